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
    // x = number of nines of the percentile (p99 = 2), capped where the
    // run's sample count stops resolving the tail (the last sample of n
    // sits at 1 - 1/n).
    let nines = |p: &Percentile, samples: u64| {
        let resolvable = 1.0 - 1.0 / samples.max(2) as f64;
        -(1.0 - (p.percent / 100.0).min(resolvable)).log10()
    };
    let curves: Vec<Series<'_>> = runs
        .iter()
        .zip(COLORS.iter().cycle())
        .map(|(s, color)| Series {
            label: &s.config.target,
            color,
            points: s
                .percentile_curve
                .iter()
                .map(|p| (nines(p, s.successes), p.secs * 1e3))
                .collect(),
        })
        .collect();
    out.push_str("<h2>Latency by percentile</h2>\n");
    let nines_ticks = [
        (0.0, "p0"),
        (1.0, "p90"),
        (2.0, "p99"),
        (3.0, "p99.9"),
        (4.0, "p99.99"),
        (5.0, "p99.999"),
    ];
    out.push_str(&chart(&curves, &nines_ticks, "ms"));
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
    let seconds = runs
        .iter()
        .map(|s| s.completions_per_sec.len())
        .max()
        .unwrap_or(0);
    let step = (seconds / 8).max(1);
    let second_labels: Vec<(f64, String)> = (0..seconds)
        .step_by(step)
        .map(|i| (i as f64, format!("{i} s")))
        .collect();
    let second_ticks: Vec<(f64, &str)> = second_labels
        .iter()
        .map(|(x, label)| (*x, label.as_str()))
        .collect();
    out.push_str(&chart(&timelines, &second_ticks, "requests/s"));
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

/// A line chart of `series` with linear axes starting at zero, the x axis
/// labelled at `x_ticks` (the last tick fixes its extent when the data end
/// sooner). Each point is also drawn as a dot, so a series of one point
/// still shows.
fn chart(series: &[Series<'_>], x_ticks: &[(f64, &str)], y_unit: &str) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_data_max = all.clone().map(|p| p.0).fold(0.0_f64, f64::max);
    // Latency curves stop at the last tick that the data reach, plus one.
    let x_max = x_ticks
        .iter()
        .map(|t| t.0)
        .find(|&t| t >= x_data_max)
        .unwrap_or(x_data_max)
        .max(1.0);
    let y_max = all.map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9);
    let sx = |x: f64| MARGIN + x / x_max * (WIDTH - 2.0 * MARGIN);
    let sy = |y: f64| HEIGHT - MARGIN - y / y_max * (HEIGHT - 2.0 * MARGIN);
    let bottom = HEIGHT - MARGIN;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         font-size=\"11\">\n<line x1=\"{m}\" y1=\"{bottom}\" x2=\"{r}\" y2=\"{bottom}\" \
         stroke=\"black\"/><line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{bottom}\" \
         stroke=\"black\"/>",
        m = MARGIN,
        r = WIDTH - MARGIN,
    );
    for fraction in [0.0, 0.5, 1.0] {
        let y = y_max * fraction;
        let _ = writeln!(
            svg,
            "<line x1=\"{a}\" y1=\"{py:.1}\" x2=\"{m}\" y2=\"{py:.1}\" stroke=\"black\"/>\
             <text x=\"{t}\" y=\"{ty:.1}\" text-anchor=\"end\">{}</text>",
            format_number(y),
            a = MARGIN - 4.0,
            m = MARGIN,
            t = MARGIN - 6.0,
            py = sy(y),
            ty = sy(y) + 4.0,
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{m}\" y=\"{t}\">{}</text>",
        escape(y_unit),
        m = MARGIN - 30.0,
        t = MARGIN - 12.0,
    );
    for &(x, label) in x_ticks.iter().filter(|t| t.0 <= x_max) {
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{bottom}\" x2=\"{px:.1}\" y2=\"{b4}\" stroke=\"black\"/>\
             <text x=\"{px:.1}\" y=\"{ty}\" text-anchor=\"middle\">{}</text>",
            escape(label),
            px = sx(x),
            b4 = bottom + 4.0,
            ty = bottom + 16.0,
        );
    }
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
            14.0 + 14.0 * i as f64,
            s.color,
            escape(s.label)
        );
        for &(x, y) in &s.points {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.5\" fill=\"{}\"/>",
                sx(x),
                sy(y),
                s.color
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// A figure with as many decimals as its size needs.
fn format_number(value: f64) -> String {
    if value == 0.0 {
        "0".to_string()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
