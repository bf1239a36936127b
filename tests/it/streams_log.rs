//! `--streams-log`: exactly one JSON line per stream started (completed, failed or interrupted), outcomes that add
//! up to the report's, and per-line values that are the ones the report's histograms were made of.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use ssebench::config::{RunConfig, Target};
use ssebench::recorder::HISTOGRAM_MAX;
use ssebench::server::ServeConfig;

use crate::util::{failures, free_addr, run, run_cfg, serve, serve_cfg, temp_dir};

fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

fn outcomes(lines: &[serde_json::Value]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in lines {
        *counts.entry(line["outcome"].as_str().unwrap().to_string()).or_default() += 1;
    }
    counts
}

/// A port nothing listens on.
fn refusing_target() -> Target {
    Target::parse(&format!("http://{}/events", free_addr())).unwrap()
}

/// `-n` over two cores against a server and a refusing target: one line per stream started, each (user, stream)
/// once, outcomes counted as the report counts them; the lines' first-event times make the report's p50.
#[test]
fn one_line_per_stream_with_the_reports_outcomes() {
    let server = serve(ServeConfig { events: 5, interval: Duration::from_millis(2), ..serve_cfg() });
    let path = temp_dir("streams-log").join("n.jsonl");
    let cfg = RunConfig {
        targets: vec![Target::parse(&format!("http://{}/events", server.addr)).unwrap(), refusing_target()],
        streams_limit: Some(120),
        threads: 2,
        report_interval: Duration::from_millis(50),
        streams_log_path: Some(path.clone()),
        ..run_cfg(server.addr, 8)
    };
    let report = run(&cfg);
    let streams = &report.figures.streams;
    assert!(streams.completed > 0 && streams.failed > 0, "{streams:?}");
    assert_eq!(streams.streams_log_dropped, 0);
    let lines = read_lines(&path);
    assert_eq!(lines.len() as u64, streams.started);
    let keys: BTreeSet<(u64, u64)> =
        lines.iter().map(|l| (l["vu"].as_u64().unwrap(), l["stream"].as_u64().unwrap())).collect();
    assert_eq!(keys.len(), lines.len(), "each (vu, stream) once");
    let counts = outcomes(&lines);
    assert_eq!(counts.get("completed").copied().unwrap_or(0), streams.completed);
    assert_eq!(counts.get("connect_refused").copied().unwrap_or(0), failures(&report, "connect_refused"));
    assert_eq!(counts.values().sum::<u64>(), streams.completed + streams.failed);

    let mut first_event = Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX, 3).unwrap();
    let (mut events, mut bytes) = (0, 0);
    for line in &lines {
        events += line["events"].as_u64().unwrap();
        bytes += line["bytes"].as_u64().unwrap();
        if line["outcome"] == "connect_refused" {
            assert!(line["connect_us"].is_null() && line["first_event_us"].is_null(), "{line}");
            assert_eq!((line["events"].as_u64(), line["bytes"].as_u64()), (Some(0), Some(0)), "{line}");
            continue;
        }
        assert!(line["tls_us"].is_null(), "plain HTTP: {line}");
        assert!(line["headers_us"].as_u64().unwrap() <= line["first_event_us"].as_u64().unwrap(), "{line}");
        assert!(line["first_event_us"].as_u64().unwrap() <= line["stream_us"].as_u64().unwrap(), "{line}");
        assert_eq!(line["events"].as_u64(), Some(5), "{line}");
        assert!(line["max_gap_us"].as_u64().unwrap() > 0, "{line}");
        assert!(line.get("ttft_us").is_none(), "LLM fields only with --openai: {line}");
        first_event.saturating_record(line["first_event_us"].as_u64().unwrap());
    }
    assert_eq!(events, report.figures.events.received);
    assert_eq!(bytes, report.figures.events.bytes);
    let (logged, reported) = (first_event.value_at_quantile(0.5), report.figures.latency_us.first_event.p50);
    assert!(first_event.equivalent(logged, reported), "p50 from the log {logged} µs, reported {reported} µs");
}

/// A `-d` run whose streams never end on their own: each is logged once, as interrupted, when the run ends.
#[test]
fn streams_open_at_the_end_are_logged_as_interrupted() {
    let server = serve(ServeConfig { events: 0, interval: Duration::from_millis(20), ..serve_cfg() });
    let path = temp_dir("streams-log").join("d.jsonl");
    let cfg = RunConfig {
        duration: Some(Duration::from_millis(600)),
        report_interval: Duration::from_millis(200),
        streams_log_path: Some(path.clone()),
        ..run_cfg(server.addr, 6)
    };
    let report = run(&cfg);
    let streams = &report.figures.streams;
    let lines = read_lines(&path);
    assert_eq!((streams.started, streams.interrupted), (6, 6), "{streams:?}");
    assert_eq!(lines.len(), 6);
    assert_eq!(outcomes(&lines).get("interrupted"), Some(&6));
    let run_start_us = report.started_at.unix_us;
    for line in &lines {
        let start_us = line["start_us"].as_u64().unwrap();
        assert!(start_us >= run_start_us && start_us < run_start_us + 600_000, "{line}");
        assert!(line["connect_us"].is_u64() && line["headers_us"].is_u64(), "{line}");
        assert!(line["events"].as_u64().unwrap() > 0 && line["bytes"].as_u64().unwrap() > 0, "{line}");
    }
}
