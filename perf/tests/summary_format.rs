//! The text, JSON and HTML outputs a user reads.

use std::time::{Duration, Instant};

use cairn_perf::config::RunConfig;
use cairn_perf::cpu::ClientCpu;
use cairn_perf::driver::{LoadShape, Plan, Stop, Warmup};
use cairn_perf::keys::{value, KeySpace};
use cairn_perf::recorder::Recorder;
use cairn_perf::summary::Summary;
use cairn_perf::text::{render, render_comparison};
use cairn_perf::workload::Workload;

/// 100 requests taking 1..=100 ms, one per 10 ms, and `failures` failures.
fn summary(failures: u64, cpu: ClientCpu, scale: f64) -> Summary {
    let start = Instant::now();
    let recorder = Recorder::new(start);
    for i in 1..=100u64 {
        let begin = start + Duration::from_millis(10 * i);
        let latency = Duration::from_secs_f64(i as f64 * 1e-3 * scale);
        recorder.record(i as usize, begin, begin + latency, None);
    }
    for i in 0..failures {
        let kind = if i % 2 == 0 {
            "etcdserver: too many requests"
        } else {
            "etcdserver: request timed out"
        };
        recorder.record(0, start, start, Some(kind));
    }
    let plan = Plan {
        workload: Workload::Put,
        keys: KeySpace::new(8, 100_000, false).unwrap(),
        value: value(256).unwrap(),
        shape: LoadShape {
            clients: 10,
            stop: Stop::Total(100),
            rate_per_sec: None,
            warmup: Warmup::None,
        },
    };
    let config = RunConfig::describe("etcd", &["127.0.0.1:2379".to_string()], 2, &plan, false);
    Summary::new(config, &recorder.finish(), cpu)
}

fn calm_cpu() -> ClientCpu {
    ClientCpu::new(Duration::from_millis(100), Duration::from_secs(1), 100)
}

#[test]
fn text_summary_has_etcds_sections_and_figures() {
    let text = render(&summary(0, calm_cpu(), 1.0));
    for section in [
        "Summary:",
        "Response time histogram:",
        "Latency distribution:",
    ] {
        assert!(text.contains(section), "missing {section}:\n{text}");
    }
    assert!(text.contains("  Slowest:\t0.100000 secs."), "{text}");
    assert!(text.contains("  Fastest:\t0.001000 secs."), "{text}");
    assert!(text.contains("  Average:\t0.050500 secs."), "{text}");
    // 100 requests from t=10 ms to the last ending at 1000 + 100 ms.
    assert!(text.contains("  Total:\t1.0900 secs."), "{text}");
    assert!(text.contains("  50% in 0.050"), "{text}");
    assert!(text.contains("  99.99% in 0.100"), "{text}");
    let bars = text.lines().filter(|l| l.contains("]\t|")).count();
    assert_eq!(bars, 10, "{text}");
    // Equal-width buckets over an even spread: ten requests each.
    assert!(
        text.lines().filter(|l| l.contains(" [10]\t|")).count() >= 9,
        "{text}"
    );
    assert!(!text.contains("Error distribution"), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
}

#[test]
fn errors_are_listed_by_kind_most_frequent_first() {
    let text = render(&summary(5, calm_cpu(), 1.0));
    let errors = text
        .split("Error distribution:\n")
        .nth(1)
        .expect("an error section");
    let lines: Vec<&str> = errors.lines().take(2).collect();
    assert_eq!(
        lines,
        [
            "  [3]\tetcdserver: too many requests",
            "  [2]\tetcdserver: request timed out"
        ]
    );
    assert!(text.contains("Requests:\t105 (100 ok, 5 failed"), "{text}");
}

#[test]
fn a_busy_client_gets_a_warning() {
    let busy = ClientCpu::new(Duration::from_millis(900), Duration::from_secs(1), 100);
    let text = render(&summary(0, busy, 1.0));
    assert!(text.contains("WARNING"), "{text}");
    assert!(text.contains("client-bound"), "{text}");
}

#[test]
fn json_carries_every_figure_and_the_configuration() {
    let s = summary(1, calm_cpu(), 1.0);
    let json: serde_json::Value = serde_json::to_value(&s).unwrap();
    for field in [
        "total_secs",
        "requests",
        "successes",
        "failures",
        "errors",
        "slowest_secs",
        "fastest_secs",
        "average_secs",
        "stddev_secs",
        "requests_per_sec",
        "histogram",
        "percentiles",
        "percentile_curve",
        "completions_per_sec",
        "client_cpu",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    assert_eq!(json["config"]["val_size"], 256);
    assert_eq!(json["config"]["key_space_size"], 100_000);
    assert_eq!(json["config"]["conns"], 2);
    assert_eq!(json["config"]["target"], "etcd");
    assert_eq!(json["percentiles"].as_array().unwrap().len(), 9);
}

#[test]
fn comparison_shows_ratios() {
    let etcd = summary(0, calm_cpu(), 1.0);
    let cairn = summary(0, calm_cpu(), 0.5);
    let text = render_comparison(&etcd, &cairn);
    let p50 = text
        .lines()
        .find(|l| l.trim_start().starts_with("p50"))
        .unwrap();
    assert!(p50.ends_with("0.50x"), "{text}");
    let rps = text.lines().find(|l| l.contains("Requests/sec")).unwrap();
    assert!(rps.ends_with("x"), "{text}");
}

#[test]
fn html_report_has_both_charts() {
    let s = summary(0, calm_cpu(), 1.0);
    let page = cairn_perf::html::page(&[&s]);
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(page.contains("Latency by percentile"));
    assert!(page.contains("Throughput over time"));
    assert!(page.contains("&quot;val_size&quot;: 256"));
}

#[test]
fn check_perf_verdict_names_the_failed_criterion() {
    use cairn_perf::check::{render_verdict, verdict, CheckLoad};
    // About 92 requests/s, slowest 0.1 s, stddev 0.03 s.
    let s = summary(0, calm_cpu(), 1.0);
    let small = verdict(&s, CheckLoad::S);
    assert!(!small.passed);
    let text = render_verdict(&small);
    assert!(text.starts_with("check-perf --load s:"), "{text}");
    assert!(text.contains("FAIL: throughput"), "{text}");
    assert!(text.contains("PASS: slowest request"), "{text}");
    assert!(text.contains("PASS: stddev"), "{text}");
    assert!(text.trim_end().ends_with("FAIL"), "{text}");
    // Ten times slower: the slowest request (1 s) and the spread fail too.
    let slow = summary(0, calm_cpu(), 10.0);
    let text = render_verdict(&verdict(&slow, CheckLoad::S));
    assert!(text.contains("FAIL: slowest request"), "{text}");
    assert!(text.contains("FAIL: stddev"), "{text}");
}
