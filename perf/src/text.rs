//! The text summary, laid out like etcd's benchmark tool prints it so the
//! two can be read side by side: Summary, Response time histogram, Latency
//! distribution; then errors by kind and the client's own CPU use.
//! Seconds are printed with six decimals (microseconds): loopback latencies
//! are a fraction of a millisecond.

use std::fmt::Write;

use crate::check::render_verdict;
use crate::cpu::CLIENT_BOUND_CORES;
use crate::limits::SUMMARY_BAR_CHARS_MAX;
use crate::summary::Summary;

/// The whole text summary of one run.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let c = &summary.config;
    let _ = writeln!(
        out,
        "{} against {} ({} conns, {} clients{}):",
        c.workload,
        c.target,
        c.conns,
        c.clients,
        match c.rate_per_sec {
            Some(rate) => format!(", open loop at {rate}/s"),
            None => String::new(),
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Summary:");
    let _ = writeln!(out, "  Total:\t{:.4} secs.", summary.total_secs);
    let _ = writeln!(out, "  Slowest:\t{:.6} secs.", summary.slowest_secs);
    let _ = writeln!(out, "  Fastest:\t{:.6} secs.", summary.fastest_secs);
    let _ = writeln!(out, "  Average:\t{:.6} secs.", summary.average_secs);
    let _ = writeln!(out, "  Stddev:\t{:.6} secs.", summary.stddev_secs);
    let _ = writeln!(out, "  Requests/sec:\t{:.4}", summary.requests_per_sec);
    let _ = writeln!(
        out,
        "  Requests:\t{} ({} ok, {} failed; {} warm-up not counted)",
        summary.requests, summary.successes, summary.failures, summary.warmup_requests
    );

    if summary.empty_ranges > 0 {
        let _ = writeln!(
            out,
            "  Empty ranges:\t{} (reads that found no key; --prefill fills the key space)",
            summary.empty_ranges
        );
    }

    if !summary.histogram.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Response time histogram:");
        let most = summary.histogram.iter().map(|b| b.count).max().unwrap_or(0);
        for bucket in &summary.histogram {
            let bar = bar_chars(bucket.count, most);
            let _ = writeln!(
                out,
                "  {:.6} [{}]\t|{}",
                bucket.upper_secs,
                bucket.count,
                "∎".repeat(bar)
            );
        }
    }

    if !summary.percentiles.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Latency distribution:");
        for p in &summary.percentiles {
            let _ = writeln!(out, "  {}% in {:.6} secs.", p.percent, p.secs);
        }
    }

    if summary.failures > 0 {
        let _ = writeln!(out);
        let _ = writeln!(out, "Error distribution:");
        let mut kinds: Vec<(&String, &u64)> = summary.errors.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (kind, count) in kinds {
            let _ = writeln!(out, "  [{count}]\t{kind}");
        }
        if summary.errors_other > 0 {
            let _ = writeln!(out, "  [{}]\tother errors", summary.errors_other);
        }
    }

    if summary.retries > 0 {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Retries:\t{} ({:.3} per request)",
            summary.retries,
            summary.retries as f64 / summary.requests.max(1) as f64
        );
    }

    for section in &summary.sections {
        let _ = writeln!(out);
        out.push_str(&render_section(section));
    }

    if !summary.facts.is_empty() {
        let _ = writeln!(out);
        for fact in &summary.facts {
            let _ = writeln!(out, "{}:\t{}", fact.name, show_fact(fact.value, &fact.unit));
        }
    }

    if let Some(server) = &summary.server {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Server CPU: {:.2} cores over {:.1} s, {:.1} µs per request ({} process{}); \
             RSS {:.1} MiB before, {:.1} MiB after.",
            server.cores_used,
            server.wall_secs,
            server.cpu_us_per_request,
            server.processes,
            if server.processes == 1 { "" } else { "es" },
            server.rss_bytes_before as f64 / MIB,
            server.rss_bytes_after as f64 / MIB,
        );
    }

    let cpu = &summary.client_cpu;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Client CPU: {:.2} cores over {:.1} s, {:.1} µs per request.",
        cpu.cores_used, cpu.wall_secs, cpu.cpu_us_per_request
    );
    if cpu.client_bound {
        let _ = writeln!(
            out,
            "WARNING: the load generator itself used {:.0}% of a core (threshold {:.0}%); \
             it shares the machine with the server, so this result may be client-bound.",
            cpu.cores_used * 100.0,
            CLIENT_BOUND_CORES * 100.0
        );
    }
    if let Some(verdict) = &summary.check {
        let _ = writeln!(out);
        out.push_str(&render_verdict(verdict));
    }
    out
}

const MIB: f64 = 1024.0 * 1024.0;

fn show_fact(value: f64, unit: &str) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.3} {unit}")
    }
    .trim_end()
    .to_string()
}

/// One part of a run, in a few lines: counts, rate, average and tail.
fn render_section(section: &crate::summary::Section) -> String {
    let s = &section.summary;
    let mut out = String::new();
    let _ = writeln!(out, "Section {}:", section.name);
    let _ = writeln!(
        out,
        "  Requests:\t{} ({} ok, {} failed)",
        s.requests, s.successes, s.failures
    );
    let _ = writeln!(out, "  Requests/sec:\t{:.4}", s.requests_per_sec);
    let _ = writeln!(out, "  Average:\t{:.6} secs.", s.average_secs);
    for percent in [50.0, 99.0, 99.9] {
        if let Some(secs) = s.percentile_secs(percent) {
            let _ = writeln!(out, "  {percent}% in {secs:.6} secs.");
        }
    }
    let _ = writeln!(out, "  Slowest:\t{:.6} secs.", s.slowest_secs);
    for (kind, count) in &s.errors {
        let _ = writeln!(out, "  [{count}]\t{kind}");
    }
    out
}

fn bar_chars(count: u64, most: u64) -> usize {
    if most == 0 {
        return 0;
    }
    let chars = (count as u128 * SUMMARY_BAR_CHARS_MAX as u128 / most as u128) as usize;
    // A non-empty bucket always shows at least one mark.
    if count > 0 {
        chars.max(1)
    } else {
        0
    }
}

/// cairn's figure over etcd's (`None` when etcd's is zero).
pub fn ratio(cairn: f64, etcd: f64) -> Option<f64> {
    (etcd > 0.0).then(|| cairn / etcd)
}

/// How a row of the comparison table shows its figures.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    PerSec,
    Secs,
    Ratio,
}

/// The comparison table printed after both summaries of `compare`.
pub fn render_comparison(etcd: &Summary, cairn: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Comparison ({}):", etcd.config.workload);
    let _ = writeln!(
        out,
        "  {:<32} {:>14} {:>14} {:>14}",
        "", "etcd", "cairn", "cairn/etcd"
    );
    let mut row = |name: &str, e: f64, c: f64, unit: Unit| {
        let show = |v: f64| match unit {
            Unit::Count => format!("{v:.0}"),
            Unit::PerSec => format!("{v:.1}"),
            Unit::Secs => format!("{:.3} ms", v * 1e3),
            Unit::Ratio => format!("{v:.2}"),
        };
        let r = ratio(c, e).map_or("-".to_string(), |r| format!("{r:.2}x"));
        let _ = writeln!(out, "  {name:<32} {:>14} {:>14} {r:>14}", show(e), show(c));
    };
    row(
        "Requests/sec",
        etcd.requests_per_sec,
        cairn.requests_per_sec,
        Unit::PerSec,
    );
    row("Average", etcd.average_secs, cairn.average_secs, Unit::Secs);
    for percent in [50.0, 99.0] {
        if let (Some(e), Some(c)) = (
            etcd.percentile_secs(percent),
            cairn.percentile_secs(percent),
        ) {
            row(&format!("p{percent}"), e, c, Unit::Secs);
        }
    }
    row(
        "Failures",
        etcd.failures as f64,
        cairn.failures as f64,
        Unit::Count,
    );
    if let (Some(e), Some(c)) = (&etcd.server, &cairn.server) {
        row("Server cores", e.cores_used, c.cores_used, Unit::Ratio);
        row(
            "Server µs/req",
            e.cpu_us_per_request,
            c.cpu_us_per_request,
            Unit::PerSec,
        );
    }
    for fact in &etcd.facts {
        if let Some(c) = cairn.fact(&fact.name) {
            row(&fact.name, fact.value, c, Unit::Ratio);
        }
    }
    out
}
