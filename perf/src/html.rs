//! `--report DIR`: a self-contained HTML page per run with the summary, an
//! inline SVG latency percentile curve and throughput over time.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::error::PerfError;
use crate::summary::{Percentile, Summary};
use crate::text::render;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const MARGIN: f64 = 48.0;

/// One series of a chart: a label and (x, y) points in data units.
struct Series<'a> {
    label: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// Writes `report.html` into `dir` (created if missing) for the given runs
/// (one, or etcd's and cairn's from `compare`) and returns its path.
pub fn write_report(dir: &Path, runs: &[&Summary]) -> Result<PathBuf, PerfError> {
    std::fs::create_dir_all(dir).map_err(|source| PerfError::Io {
        op: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("report.html");
    std::fs::write(&path, page(runs)).map_err(|source| PerfError::Io {
        op: "write",
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The whole page.
pub fn page(runs: &[&Summary]) -> String {
    let title = runs.first().map_or("cairn-perf".to_string(), |s| {
        format!("cairn-perf: {}", s.config.workload)
    });
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
         pre{{background:#f6f6f6;padding:1em}}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let nines = |p: &Percentile| -(1.0 - (p.percent / 100.0).min(0.999_999)).log10();
    let curves: Vec<Series<'_>> = runs
        .iter()
        .zip(COLORS.iter().cycle())
        .map(|(s, color)| Series {
            label: &s.config.target,
            color,
            points: s
                .percentile_curve
                .iter()
                .map(|p| (nines(p), p.secs * 1e3))
                .collect(),
        })
        .collect();
    out.push_str("<h2>Latency by percentile</h2>\n");
    out.push_str(&chart(
        &curves,
        "percentile (0 = p0, 1 = p90, 2 = p99, 3 = p99.9)",
        "ms",
    ));
    let timelines: Vec<Series<'_>> = runs
        .iter()
        .zip(COLORS.iter().cycle())
        .map(|(s, color)| Series {
            label: &s.config.target,
            color,
            points: s
                .completions_per_sec
                .iter()
                .enumerate()
                .map(|(i, n)| (i as f64, *n as f64))
                .collect(),
        })
        .collect();
    out.push_str("<h2>Throughput over time</h2>\n");
    out.push_str(&chart(&timelines, "second", "requests/s"));
    for summary in runs {
        let _ = write!(
            out,
            "<h2>{}</h2>\n<pre>{}</pre>\n<details><summary>configuration</summary><pre>{}</pre></details>\n",
            escape(&summary.config.target),
            escape(&render(summary)),
            escape(&serde_json::to_string_pretty(&summary.config).unwrap_or_default())
        );
    }
    out.push_str("</body></html>\n");
    out
}

/// A line chart of `series` with linear axes starting at zero.
fn chart(series: &[Series<'_>], x_label: &str, y_label: &str) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(0.0_f64, f64::max).max(1e-9);
    let y_max = all.map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9);
    let sx = |x: f64| MARGIN + x / x_max * (WIDTH - 2.0 * MARGIN);
    let sy = |y: f64| HEIGHT - MARGIN - y / y_max * (HEIGHT - 2.0 * MARGIN);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         font-size=\"11\">\n<line x1=\"{m}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{m}\" y=\"{t}\">{y_max:.3} {}</text>\
         <text x=\"{r}\" y=\"{xl}\" text-anchor=\"end\">{} (max {x_max:.2})</text>\n",
        escape(y_label),
        escape(x_label),
        m = MARGIN,
        b = HEIGHT - MARGIN,
        r = WIDTH - MARGIN,
        t = MARGIN - 6.0,
        xl = HEIGHT - MARGIN + 16.0,
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>",
            s.color,
            points.join(" "),
            WIDTH - MARGIN - 80.0,
            MARGIN + 14.0 * i as f64,
            s.color,
            escape(s.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
