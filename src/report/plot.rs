//! Charts of results as PNG and SVG: a metric against a swept parameter with its
//! confidence band, latency CDFs, and time series with fault windows shaded.
//!
//! Every chart is described once (a private `Figure`) and drawn by one generic function
//! over plotters' `DrawingBackend`, once into a 1000x600 PNG and once into an SVG, so
//! both files show the same thing. Text is drawn with the vendored DejaVu Sans (through
//! plotters' `ab_glyph` feature), never a system font, so a PNG is byte-identical on
//! every machine and needs no font packages. Colours come from a fixed palette (Okabe
//! and Ito, "Color Universal Design", 2002) chosen by series index; nothing random or
//! time-dependent enters the output.
//!
//! Input is cleaned rather than rejected: points with NaN or infinite coordinates are
//! skipped, a flat or single-point range is padded, an empty chart says "no data", and a
//! log axis falls back to linear when a value is zero or negative. Each file is written
//! through a temporary file in the same folder and a rename.

use crate::files::write_with;
use plotters::chart::{ChartBuilder, ChartContext, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind, IntoDrawingArea};
use plotters::element::{Circle, PathElement, Polygon, Rectangle, Text};
use plotters::prelude::{BitMapBackend, DrawingBackend, SVGBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{BLACK, Color, FontStyle, IntoFont, RGBAColor, RGBColor, ShapeStyle, WHITE};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Width and height of every chart, in pixels (the SVG uses the same user units).
pub const SIZE: (u32, u32) = (1000, 600);

/// Font family every piece of text uses; the vendored font is registered under it.
const FONT: &str = "sans-serif";

/// Okabe–Ito colours, ordered so the first few are the most distinct on white; yellow
/// (hard to see on white) comes last.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// Fill of a fault window: a translucent red, light enough to keep grid lines visible.
const FAULT_FILL: RGBAColor = RGBAColor(230, 0, 0, 0.15);

/// Opacity of a confidence band over its line's colour.
const BAND_OPACITY: f64 = 0.2;

/// Values beyond ±this are skipped like infinities: a wider span overflows `f64` and
/// plotters' tick search never ends.
const MAX_PLOTTABLE: f64 = 1e300;

/// A range narrower than this share of its magnitude is treated as flat (padded to be
/// readable rather than showing float noise).
const FLAT_RELATIVE_SPAN: f64 = 1e-9;

/// A CDF's x axis becomes logarithmic when max/min exceeds this (more than 2 decades).
const LOG_AXIS_MIN_RATIO: f64 = 100.0;

/// One line with an optional confidence band.
#[derive(Debug, Clone, PartialEq)]
pub struct BandSeries {
    /// Legend label; an empty name is left out of the legend.
    pub name: String,
    /// Points in any order (they are drawn sorted by `x`).
    pub points: Vec<BandPoint>,
}

/// One point of a [`BandSeries`]: the mean and its confidence interval at `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandPoint {
    /// Parameter value.
    pub x: f64,
    /// Mean across replications (the line).
    pub mean: f64,
    /// Lower end of the interval; NaN leaves the band out at this point.
    pub low: f64,
    /// Upper end of the interval; NaN leaves the band out at this point.
    pub high: f64,
}

/// A plain line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSeries {
    /// Legend label; an empty name is left out of the legend.
    pub name: String,
    /// `(x, y)` points, drawn in the given order.
    pub points: Vec<(f64, f64)>,
}

/// Metric against a swept parameter: one line per series with its 95% CI band shaded (the
/// hockey stick). Writes `<base>.png` and `<base>.svg`.
pub fn metric_vs_param(
    base: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[BandSeries],
) -> std::io::Result<()> {
    write_both(base, &band_figure(title, x_label, y_label, series))
}

/// [`metric_vs_param`] as an SVG document in a string (for the HTML report).
pub fn metric_vs_param_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[BandSeries],
) -> std::io::Result<String> {
    svg_string(&band_figure(title, x_label, y_label, series))
}

fn band_figure(title: &str, x_label: &str, y_label: &str, series: &[BandSeries]) -> Figure {
    let mut fig = Figure::new(title, x_label, y_label);
    for (i, s) in series.iter().enumerate() {
        let mut pts: Vec<BandPoint> = s.points.clone();
        pts.sort_by(|a, b| a.x.total_cmp(&b.x));
        let line = pts
            .iter()
            .map(|p| (p.x, p.mean))
            .filter(|p| is_plottable(*p));
        fig.lines.push(Line::new(&s.name, i, line.collect(), true));
        fig.bands.push(Band {
            color: color(i),
            points: pts
                .iter()
                .filter(|p| plottable(p.x) && plottable(p.low) && plottable(p.high))
                .map(|p| (p.x, p.low, p.high))
                .collect(),
        });
    }
    let xs = fig.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let ys = fig.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let band_ys = fig
        .bands
        .iter()
        .flat_map(|b| b.points.iter().flat_map(|p| [p.1, p.2]));
    fig.x_range = padded(extent(xs), 0.02);
    fig.y_range = padded(extent(ys.chain(band_ys)), 0.05);
    fig
}

/// Latency CDFs: x = latency (ms, log scale if the range spans more than 2 decades), y =
/// share of requests ≤ x in `[0, 1]`; one line per series. Writes `<base>.png` and
/// `<base>.svg`.
pub fn latency_cdf(base: &Path, title: &str, series: &[LineSeries]) -> std::io::Result<()> {
    write_both(base, &cdf_figure(title, series))
}

/// [`latency_cdf`] as an SVG document in a string (for the HTML report).
pub fn latency_cdf_svg(title: &str, series: &[LineSeries]) -> std::io::Result<String> {
    svg_string(&cdf_figure(title, series))
}

fn cdf_figure(title: &str, series: &[LineSeries]) -> Figure {
    let mut fig = Figure::new(title, "latency (ms)", "share of requests ≤ latency");
    fig.lines = plain_lines(series);
    let xs = fig.all_points().map(|p| p.0);
    let (x_log, x_range) = cdf_x_axis(extent(xs));
    fig.x_log = x_log;
    fig.x_range = x_range;
    let (lo, hi) = extent(fig.all_points().map(|p| p.1)).unwrap_or((0.0, 1.0));
    fig.y_range = padded(Some((lo.min(0.0), hi.max(1.0))), 0.02);
    fig
}

/// Time series: x = simulated time (s), one line per series, with the given windows
/// `[start_s, end_s)` shaded light red and labelled "fault" in the legend when non-empty.
/// Windows are clipped to the time range of the data. Writes `<base>.png` and
/// `<base>.svg`.
pub fn time_series(
    base: &Path,
    title: &str,
    y_label: &str,
    series: &[LineSeries],
    shaded: &[(f64, f64)],
) -> std::io::Result<()> {
    write_both(base, &time_figure(title, y_label, series, shaded))
}

/// [`time_series`] as an SVG document in a string (for the HTML report).
pub fn time_series_svg(
    title: &str,
    y_label: &str,
    series: &[LineSeries],
    shaded: &[(f64, f64)],
) -> std::io::Result<String> {
    svg_string(&time_figure(title, y_label, series, shaded))
}

fn time_figure(title: &str, y_label: &str, series: &[LineSeries], shaded: &[(f64, f64)]) -> Figure {
    let mut fig = Figure::new(title, "simulated time (s)", y_label);
    fig.lines = plain_lines(series);
    let windows: Vec<(f64, f64)> = shaded
        .iter()
        .copied()
        .filter(|&(s, e)| plottable(s) && plottable(e) && s < e)
        .collect();
    let data_x = extent(fig.all_points().map(|p| p.0));
    let window_x = extent(windows.iter().flat_map(|w| [w.0, w.1]));
    fig.x_range = padded(data_x.or(window_x), 0.0);
    let Range { start, end } = fig.x_range;
    fig.shaded = windows
        .iter()
        .map(|&(s, e)| (s.max(start), e.min(end)))
        .filter(|&(s, e)| s < e)
        .collect();
    fig.y_range = padded(extent(fig.all_points().map(|p| p.1)), 0.05);
    fig
}

/// Everything a chart shows, already cleaned of non-finite values.
struct Figure {
    title: String,
    x_label: String,
    y_label: String,
    x_range: Range<f64>,
    x_log: bool,
    y_range: Range<f64>,
    lines: Vec<Line>,
    bands: Vec<Band>,
    shaded: Vec<(f64, f64)>,
}

/// One series' line in data coordinates.
struct Line {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    /// Mark every point (sweep points are discrete); a lone point is always marked.
    markers: bool,
}

/// A confidence band: `(x, low, high)`, sorted by `x`.
struct Band {
    color: RGBColor,
    points: Vec<(f64, f64, f64)>,
}

impl Figure {
    fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Figure {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            x_range: 0.0..1.0,
            x_log: false,
            y_range: 0.0..1.0,
            lines: Vec::new(),
            bands: Vec::new(),
            shaded: Vec::new(),
        }
    }

    fn all_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.lines.iter().flat_map(|l| l.points.iter().copied())
    }

    fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.points.is_empty())
            && self.bands.iter().all(|b| b.points.is_empty())
    }
}

impl Line {
    fn new(name: &str, index: usize, points: Vec<(f64, f64)>, markers: bool) -> Self {
        let markers = markers || points.len() == 1;
        Line {
            name: name.to_string(),
            color: color(index),
            points,
            markers,
        }
    }
}

fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Finite and within ±[`MAX_PLOTTABLE`].
fn plottable(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_PLOTTABLE
}

fn is_plottable((x, y): (f64, f64)) -> bool {
    plottable(x) && plottable(y)
}

/// Lines of `series` without their non-finite points.
fn plain_lines(series: &[LineSeries]) -> Vec<Line> {
    series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let pts = s.points.iter().copied().filter(|p| is_plottable(*p));
            Line::new(&s.name, i, pts.collect(), false)
        })
        .collect()
}

/// Smallest and largest plottable value, if any.
fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| plottable(*v))
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// `lo..hi` (plottable values) widened by `frac` of its span on each side; a flat range
/// is widened by 10% of its magnitude (or 1 around zero) so it has height; no values give
/// `0..1`.
fn padded(extent: Option<(f64, f64)>, frac: f64) -> Range<f64> {
    let Some((lo, hi)) = extent else {
        return 0.0..1.0;
    };
    let span = hi - lo;
    let magnitude = lo.abs().max(hi.abs());
    let pad = if span > magnitude * FLAT_RELATIVE_SPAN {
        span * frac
    } else if magnitude == 0.0 {
        1.0
    } else {
        magnitude * 0.1
    };
    (lo - pad)..(hi + pad)
}

/// A CDF's x axis: logarithmic (returns `true`) when every latency is positive and they
/// span more than 2 decades, else linear from 0 (or from the minimum if it is negative).
/// A ratio that overflows also gets a linear axis: plotters' log ticks count decades
/// through `hi / lo` and never finish when it is infinite.
fn cdf_x_axis(extent: Option<(f64, f64)>) -> (bool, Range<f64>) {
    match extent {
        Some((lo, hi)) if lo > 0.0 && is_log_worthy(hi / lo) => (true, lo..hi),
        Some((lo, hi)) => (false, padded(Some((lo.min(0.0), hi)), 0.0)),
        None => (false, 0.0..1.0),
    }
}

/// Whether a max/min `ratio` of positive values calls for a log axis.
fn is_log_worthy(ratio: f64) -> bool {
    ratio > LOG_AXIS_MIN_RATIO && ratio <= MAX_PLOTTABLE
}

/// Draws `fig` on `root`: the one drawing routine both backends share.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&fig.title, (FONT, 24).into_font())
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(80);
    if fig.x_log {
        let x = fig.x_range.clone().log_scale();
        draw_chart(builder.build_cartesian_2d(x, fig.y_range.clone())?, fig)?;
    } else {
        let x = fig.x_range.clone();
        draw_chart(builder.build_cartesian_2d(x, fig.y_range.clone())?, fig)?;
    }
    if fig.is_empty() {
        let (w, h) = root.dim_in_pixel();
        let style = (FONT, 20)
            .into_font()
            .color(&BLACK.mix(0.6))
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), style))?;
    }
    Ok(())
}

type Chart<'a, DB, X> = ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>;

/// Draws axes, shading, bands, lines and legend on a chart with x coordinate `X`
/// (linear or logarithmic).
fn draw_chart<'a, DB, X>(
    mut chart: Chart<'a, DB, X>,
    fig: &Figure,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 13))
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    let mut labelled = draw_shading(&mut chart, fig)?;
    for band in &fig.bands {
        draw_band(&mut chart, band)?;
    }
    for line in &fig.lines {
        labelled |= draw_line(&mut chart, line)?;
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE)
            .border_style(BLACK.mix(0.5))
            .label_font((FONT, 14))
            .margin(12)
            .draw()?;
    }
    Ok(())
}

/// Fault windows, full height; returns whether a legend entry was added.
fn draw_shading<'a, DB, X>(
    chart: &mut Chart<'a, DB, X>,
    fig: &Figure,
) -> Result<bool, DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    if fig.shaded.is_empty() {
        return Ok(false);
    }
    let Range { start, end } = fig.y_range;
    let rects = fig
        .shaded
        .iter()
        .map(|&(s, e)| Rectangle::new([(s, start), (e, end)], FAULT_FILL.filled()));
    chart
        .draw_series(rects)?
        .label("fault")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], FAULT_FILL.filled()));
    Ok(true)
}

/// A shaded band between low and high (a vertical bar when it has a single point).
fn draw_band<'a, DB, X>(
    chart: &mut Chart<'a, DB, X>,
    band: &Band,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let fill = band.color.mix(BAND_OPACITY).filled();
    match band.points.as_slice() {
        [] => {}
        [(x, low, high)] => {
            let bar = PathElement::new(vec![(*x, *low), (*x, *high)], band.color.stroke_width(2));
            chart.draw_series(std::iter::once(bar))?;
        }
        pts => {
            let lows = pts.iter().map(|p| (p.0, p.1));
            let highs = pts.iter().rev().map(|p| (p.0, p.2));
            let outline: Vec<(f64, f64)> = lows.chain(highs).collect();
            chart.draw_series(std::iter::once(Polygon::new(outline, fill)))?;
        }
    }
    Ok(())
}

/// A series' line (and markers); returns whether a legend entry was added.
fn draw_line<'a, DB, X>(
    chart: &mut Chart<'a, DB, X>,
    line: &Line,
) -> Result<bool, DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let stroke: ShapeStyle = line.color.stroke_width(2);
    let path = PathElement::new(line.points.clone(), stroke);
    let anno = chart.draw_series(std::iter::once(path))?;
    if !line.name.is_empty() {
        anno.label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], stroke));
    }
    if line.markers {
        let dots = line
            .points
            .iter()
            .map(|&p| Circle::new(p, 3, line.color.filled()));
        chart.draw_series(dots)?;
    }
    Ok(!line.name.is_empty())
}

/// A tick label: at most 6 decimals and no float noise (`0.30000000000000004` reads
/// `0.3`), scientific notation for very small or large magnitudes.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        return format!("{v:e}");
    }
    let rounded = (v * 1e6).round() / 1e6;
    if rounded == 0.0 {
        "0".to_string()
    } else {
        format!("{rounded}")
    }
}

/// Registers the vendored font under [`FONT`] once per process.
fn ensure_font() -> std::io::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "plot: the vendored font assets/fonts/DejaVuSans.ttf could not be loaded",
        ))
    }
}

/// Writes `<base>.png` and `<base>.svg`.
fn write_both(base: &Path, fig: &Figure) -> std::io::Result<()> {
    ensure_font()?;
    write_png(&with_suffix(base, "png"), fig)?;
    write_svg(&with_suffix(base, "svg"), fig)
}

/// `base` with `.ext` appended (not replacing an extension `base` may already have).
fn with_suffix(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("cannot draw chart {}: {e}", path.display()))
}

fn write_png(path: &Path, fig: &Figure) -> std::io::Result<()> {
    write_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
        draw(&root, fig).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))
    })
}

fn write_svg(path: &Path, fig: &Figure) -> std::io::Result<()> {
    let svg = svg_of(fig).map_err(|e| plot_error(path, e))?;
    write_with(path, |tmp| std::fs::write(tmp, svg.as_bytes()))
}

fn svg_of(fig: &Figure) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, fig).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The SVG document of `fig`, in a string.
fn svg_string(fig: &Figure) -> std::io::Result<String> {
    ensure_font()?;
    svg_of(fig)
        .map_err(|e| std::io::Error::other(format!("cannot draw chart \"{}\": {e}", fig.title)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

    fn band(name: &str, pts: &[(f64, f64, f64, f64)]) -> BandSeries {
        BandSeries {
            name: name.to_string(),
            points: pts
                .iter()
                .map(|&(x, mean, low, high)| BandPoint { x, mean, low, high })
                .collect(),
        }
    }

    fn line(name: &str, pts: &[(f64, f64)]) -> LineSeries {
        LineSeries {
            name: name.to_string(),
            points: pts.to_vec(),
        }
    }

    fn hockey_stick() -> Vec<BandSeries> {
        let pts = |k: f64| -> Vec<(f64, f64, f64, f64)> {
            (1..=9)
                .map(|i| {
                    let rho = i as f64 / 10.0;
                    let m = k / (1.0 - rho);
                    (rho * 100.0, m, m * 0.9, m * 1.1)
                })
                .collect()
        };
        vec![band("2 servers", &pts(10.0)), band("4 servers", &pts(5.0))]
    }

    fn cdfs() -> Vec<LineSeries> {
        let cdf = |scale: f64| -> Vec<(f64, f64)> {
            (0..=200)
                .map(|i| {
                    let p = i as f64 / 200.0;
                    (scale * (1.0 + 1000.0 * p.powi(8)), p)
                })
                .collect()
        };
        vec![line("baseline", &cdf(1.0)), line("with cache", &cdf(0.5))]
    }

    fn timeline() -> Vec<LineSeries> {
        let pts: Vec<(f64, f64)> = (0..=120)
            .map(|i| {
                let t = i as f64;
                (
                    t,
                    if (40.0..70.0).contains(&t) {
                        80.0
                    } else {
                        20.0 + (t / 7.0).sin()
                    },
                )
            })
            .collect();
        vec![line("p99 latency", &pts)]
    }

    /// Checks both files exist, the PNG is 1000x600 and the SVG mentions `texts`.
    fn check_files(base: &Path, texts: &[&str]) -> (Vec<u8>, String) {
        let png = std::fs::read(with_suffix(base, "png")).unwrap();
        assert_eq!(png[..8], PNG_SIGNATURE);
        assert_eq!(&png[12..16], b"IHDR");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), SIZE);
        let svg = std::fs::read_to_string(with_suffix(base, "svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        for t in texts {
            assert!(svg.contains(t), "svg lacks {t:?}");
        }
        (png, svg)
    }

    /// No temporary file is left next to the charts.
    fn no_temp_files(dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.contains(".tmp-"), "left over: {name}");
        }
    }

    #[test]
    fn metric_vs_param_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("nested/folder/p99");
        metric_vs_param(
            &base,
            "p99 vs load",
            "load (%)",
            "p99 (ms)",
            &hockey_stick(),
        )
        .unwrap();
        check_files(
            &base,
            &[
                "p99 vs load",
                "2 servers",
                "4 servers",
                "load (%)",
                "p99 (ms)",
            ],
        );
        no_temp_files(base.parent().unwrap());
    }

    #[test]
    fn latency_cdf_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("cdf");
        latency_cdf(&base, "latency CDF", &cdfs()).unwrap();
        check_files(
            &base,
            &["latency CDF", "baseline", "with cache", "latency (ms)"],
        );
        no_temp_files(dir.path());
    }

    #[test]
    fn time_series_writes_png_and_svg_with_fault_legend() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("timeline");
        time_series(
            &base,
            "during the crash",
            "p99 (ms)",
            &timeline(),
            &[(40.0, 70.0)],
        )
        .unwrap();
        check_files(
            &base,
            &[
                "during the crash",
                "p99 latency",
                "fault",
                "simulated time (s)",
            ],
        );
        let plain = dir.path().join("plain");
        time_series(&plain, "no faults", "p99 (ms)", &timeline(), &[]).unwrap();
        let (_, svg) = check_files(&plain, &["no faults"]);
        assert!(!svg.contains(">fault<"));
    }

    #[test]
    fn extension_in_base_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("run.v2");
        latency_cdf(&base, "t", &cdfs()).unwrap();
        assert!(dir.path().join("run.v2.png").exists());
        assert!(dir.path().join("run.v2.svg").exists());
    }

    #[test]
    fn output_is_byte_identical_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let draw_all = |tag: &str| -> Vec<Vec<u8>> {
            let b = |n: &str| dir.path().join(format!("{tag}-{n}"));
            metric_vs_param(&b("m"), "m", "x", "y", &hockey_stick()).unwrap();
            latency_cdf(&b("c"), "c", &cdfs()).unwrap();
            time_series(&b("t"), "t", "y", &timeline(), &[(40.0, 70.0)]).unwrap();
            ["m", "c", "t"]
                .iter()
                .flat_map(|n| ["png", "svg"].map(|e| std::fs::read(with_suffix(&b(n), e)).unwrap()))
                .collect()
        };
        assert_eq!(draw_all("first"), draw_all("second"));
    }

    #[test]
    fn empty_input_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        metric_vs_param(&p("m-none"), "empty", "x", "y", &[]).unwrap();
        metric_vs_param(&p("m-empty"), "empty", "x", "y", &[band("a", &[])]).unwrap();
        latency_cdf(&p("c-none"), "empty", &[]).unwrap();
        latency_cdf(&p("c-empty"), "empty", &[line("a", &[])]).unwrap();
        time_series(&p("t-none"), "empty", "y", &[], &[]).unwrap();
        time_series(&p("t-faults"), "only faults", "y", &[], &[(1.0, 2.0)]).unwrap();
        check_files(&p("m-none"), &["no data"]);
        no_temp_files(dir.path());
    }

    #[test]
    fn single_point_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let one = [band("a", &[(1.0, 2.0, 1.5, 2.5)])];
        metric_vs_param(&p("m-one"), "one", "x", "y", &one).unwrap();
        latency_cdf(&p("c-one"), "one", &[line("a", &[(5.0, 1.0)])]).unwrap();
        time_series(&p("t-one"), "one", "y", &[line("a", &[(0.0, 3.0)])], &[]).unwrap();
        check_files(&p("c-one"), &["one"]);
    }

    #[test]
    fn flat_values_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let flat = [(1.0, 7.0, 7.0, 7.0), (2.0, 7.0, 7.0, 7.0)];
        metric_vs_param(&p("m-flat"), "flat", "x", "y", &[band("a", &flat)]).unwrap();
        let zeros = [(0.0, 0.0), (0.0, 0.0)];
        time_series(&p("t-zero"), "zero", "y", &[line("a", &zeros)], &[]).unwrap();
        latency_cdf(&p("c-zero"), "zero", &[line("a", &zeros)]).unwrap();
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let bad = [
            (nan, 1.0, 0.0, 2.0),
            (1.0, inf, 0.0, 2.0),
            (2.0, 3.0, nan, nan),
            (3.0, 4.0, 3.0, 5.0),
        ];
        metric_vs_param(&p("m-nan"), "nan", "x", "y", &[band("a", &bad)]).unwrap();
        let bad_line = [(nan, 0.5), (1.0, inf), (-inf, 0.1), (2.0, 0.9), (3.0, 1.0)];
        latency_cdf(&p("c-nan"), "nan", &[line("a", &bad_line)]).unwrap();
        let windows = [
            (nan, 1.0),
            (2.0, inf),
            (3.0, 1.0),
            (-5.0, 2.5),
            (100.0, 200.0),
        ];
        time_series(&p("t-nan"), "nan", "y", &[line("a", &bad_line)], &windows).unwrap();
        let all_bad = [(nan, nan), (inf, -inf)];
        latency_cdf(&p("c-allbad"), "all bad", &[line("a", &all_bad)]).unwrap();
    }

    #[test]
    fn non_positive_latencies_get_a_linear_axis() {
        let dir = tempfile::tempdir().unwrap();
        let spread = [(0.0, 0.0), (-1.0, 0.1), (0.01, 0.5), (1e4, 1.0)];
        let base = dir.path().join("c");
        latency_cdf(&base, "non-positive", &[line("a", &spread)]).unwrap();
        check_files(&base, &["non-positive"]);
    }

    #[test]
    fn extreme_magnitudes_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let huge = [(0.0, f64::MAX), (1.0, -f64::MAX), (2.0, f64::MIN_POSITIVE)];
        time_series(&p("t-max"), "huge", "y", &[line("a", &huge)], &[]).unwrap();
        let edge = [(0.0, 1e300), (1.0, -1e300), (2.0, 0.0)];
        time_series(&p("t-edge"), "edge", "y", &[line("a", &edge)], &[]).unwrap();
        let noise = [(0.0, 1.0), (1.0, 1.0 + f64::EPSILON), (2.0, 1.0)];
        time_series(&p("t-noise"), "noise", "y", &[line("a", &noise)], &[]).unwrap();
        let tiny = [(0.0, 0.0), (1.0, f64::MIN_POSITIVE), (2.0, 5e-324)];
        time_series(&p("t-tiny"), "tiny", "y", &[line("a", &tiny)], &[]).unwrap();
        let decades = [(f64::MIN_POSITIVE, 0.0), (1e300, 1.0)];
        latency_cdf(&p("c-decades"), "decades", &[line("a", &decades)]).unwrap();
        check_files(&p("t-max"), &["huge"]);
    }

    #[test]
    fn many_and_unnamed_series() {
        let dir = tempfile::tempdir().unwrap();
        let many: Vec<LineSeries> = (0..10)
            .map(|i| {
                let name = if i == 3 {
                    String::new()
                } else {
                    format!("s{i}")
                };
                line(&name, &[(0.0, i as f64), (1.0, i as f64 + 1.0)])
            })
            .collect();
        let base = dir.path().join("t");
        time_series(&base, "many", "y", &many, &[]).unwrap();
        check_files(&base, &["s0", "s9"]);
    }

    #[test]
    fn markup_in_text_is_escaped_in_svg() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("c");
        let markup = [line("a < b & c", &[(1.0, 0.0), (2.0, 1.0)])];
        latency_cdf(&base, "<title> & more", &markup).unwrap();
        check_files(&base, &["a &lt; b &amp; c", "&lt;title&gt; &amp; more"]);
    }

    #[test]
    fn cdf_axis_is_log_only_for_positive_wide_ranges() {
        assert!(cdf_x_axis(Some((0.1, 100.0))).0);
        assert!(!cdf_x_axis(Some((1.0, 100.0))).0);
        assert!(!cdf_x_axis(Some((0.0, 1e6))).0);
        assert!(!cdf_x_axis(Some((-1.0, 1e6))).0);
        assert!(!cdf_x_axis(Some((1e-300, 1e300))).0);
        assert_eq!(cdf_x_axis(None), (false, 0.0..1.0));
    }

    #[test]
    fn ranges_are_padded_and_never_empty() {
        assert_eq!(padded(None, 0.05), 0.0..1.0);
        assert_eq!(padded(Some((0.0, 0.0)), 0.05), -1.0..1.0);
        assert_eq!(padded(Some((10.0, 10.0)), 0.05), 9.0..11.0);
        assert_eq!(padded(Some((0.0, 10.0)), 0.1), -1.0..11.0);
        assert_eq!(padded(Some((-1.0, -1.0)), 0.05), -1.1..-0.9);
        let wide = padded(Some((-MAX_PLOTTABLE, MAX_PLOTTABLE)), 0.05);
        assert!(wide.start.is_finite() && wide.end.is_finite());
        let noise = padded(Some((1.0, 1.0 + f64::EPSILON)), 0.05);
        assert!(noise.start < 0.95 && noise.end > 1.05);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.1 + 0.2), "0.3");
        assert_eq!(tick_label(-0.0), "0");
        assert_eq!(tick_label(1000.0), "1000");
        assert_eq!(tick_label(2.5e-5), "2.5e-5");
        assert_eq!(tick_label(3e9), "3e9");
    }
}
