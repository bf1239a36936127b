//! The run over time: the timeline's entries (one per `--report-interval`, the last partial) add up to the run's
//! totals exactly, follow a `--stages` ramp, come out as CSV with `--csv`; the report says when and where it ran.

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use ssebench::config::{RunConfig, Stage, Target};
use ssebench::report::Report;
use ssebench::server::ServeConfig;

use crate::util::{free_addr, read_json, run, run_cfg, serve, serve_cfg, ssebench, temp_dir};

/// Sums a timeline column.
fn total(report: &Report, column: impl Fn(&ssebench::report::timeline::TimelineEntry) -> u64) -> u64 {
    report.timeline.iter().map(column).sum()
}

/// Two cores, streams that end and start again, and a target that refuses: each interval's counts add up to the
/// run's exactly, whichever core and interval they fell in.
#[test]
fn the_timeline_adds_up_to_the_run() {
    let server = serve(ServeConfig { events: 10, interval: Duration::from_millis(5), ..serve_cfg() });
    let refused_addr = free_addr();
    let cfg = RunConfig {
        targets: vec![
            Target::parse(&format!("http://{}/events", server.addr)).unwrap(),
            Target::parse(&format!("http://{refused_addr}/events")).unwrap(),
        ],
        duration: Some(Duration::from_secs(2)),
        report_interval: Duration::from_millis(250),
        threads: 2,
        ..run_cfg(server.addr, 8)
    };
    let report = run(&cfg);
    let streams = &report.figures.streams;
    assert!(streams.completed > 0 && streams.failed > 0, "{streams:?}");
    // 2 s in 250 ms intervals: 8, and a last sliver after the deadline's boundary (or not).
    let entries = report.timeline.len();
    assert!((8..=9).contains(&entries), "{entries} entries");
    assert_eq!(total(&report, |e| e.started), streams.started);
    assert_eq!(total(&report, |e| e.completed), streams.completed);
    assert_eq!(total(&report, |e| e.failed), streams.failed);
    assert_eq!(total(&report, |e| e.interrupted), streams.interrupted);
    assert_eq!(total(&report, |e| e.events), report.figures.events.received);
    let refused_total: u64 = report.timeline.iter().filter_map(|e| e.failures.get("connect_refused")).sum();
    assert_eq!(refused_total, streams.failed);
    for pair in report.timeline.windows(2) {
        assert!(pair[0].t_s < pair[1].t_s, "{} then {}", pair[0].t_s, pair[1].t_s);
    }
    assert_eq!(report.timeline[0].t_s, 0.25);
    assert!(report.timeline.iter().any(|e| e.latency_us.contains_key("gap_us")));
    assert!(report.timeline.iter().all(|e| e.llm.is_none()));
}

/// A ramp up and down: each interval knows its stage, and its open streams follow the stage's target.
#[test]
fn open_streams_follow_the_stages() {
    let server = serve(ServeConfig { events: 0, interval: Duration::from_millis(100), ..serve_cfg() });
    let stage = |streams, ms| Stage { streams, hold: Duration::from_millis(ms) };
    let cfg = RunConfig {
        stages: vec![stage(10, 800), stage(30, 800), stage(5, 800)],
        connect_rate_per_s: Some(500.0),
        report_interval: Duration::from_millis(200),
        ..run_cfg(server.addr, 30)
    };
    let report = run(&cfg);
    let (last, timeline) = report.timeline.split_last().expect("a timeline");
    let open_in = |stage: usize| timeline.iter().filter(move |e| e.stage == stage).map(|e| e.open_streams);
    let stages: Vec<usize> = timeline.iter().map(|e| e.stage).collect();
    assert!(stages.windows(2).all(|w| w[0] <= w[1]), "{stages:?}");
    assert_eq!(open_in(0).max(), Some(10), "{:?}", report.timeline);
    assert_eq!(open_in(1).max(), Some(30), "{:?}", report.timeline);
    assert_eq!(open_in(2).min(), Some(5), "{:?}", report.timeline);
    assert_eq!((last.stage, last.open_streams), (2, 0), "the run's end closed every stream");
    assert_eq!(total(&report, |e| e.started), report.figures.streams.started);
    assert_eq!(total(&report, |e| e.interrupted), report.figures.streams.interrupted);
}

/// `ssebench run --csv`: the documented header and one row per timeline entry of the JSON report, which also says
/// when (by the test's own clock) and where the run started.
#[test]
fn csv_rows_match_the_json_timeline() {
    let server = serve(ServeConfig { events: 5, ..serve_cfg() });
    let dir = temp_dir("timeline-csv");
    let (csv_path, json_path) = (dir.join("timeline.csv"), dir.join("report.json"));
    let url = format!("http://{}/", server.addr);
    let before = SystemTime::now();
    let output = ssebench()
        .args(["run", &url, "-c", "2", "-d", "1s", "-t", "1", "--report-interval", "250ms"])
        .args(["--csv", csv_path.to_str().unwrap(), "--json", json_path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Started   "), "{stdout}");
    let report = read_json(&json_path);
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "t_s,stage,open_streams,started,completed,failed,interrupted,reconnects,events,bytes,\
         first_event_p50_us,first_event_p99_us,gap_p50_us,gap_p99_us,headers_p50_us,connect_p50_us"
    );
    let timeline = report["timeline"].as_array().unwrap();
    assert!((4..=5).contains(&timeline.len()), "{} entries", timeline.len());
    assert_eq!(lines.len() - 1, timeline.len());
    for (row, entry) in lines[1..].iter().zip(timeline) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 16, "{row}");
        assert_eq!(cells[3], entry["started"].to_string(), "{row}");
        assert_eq!(cells[8], entry["events"].to_string(), "{row}");
    }

    let started_us = report["started_at"]["unix_us"].as_u64().unwrap();
    let before_us = before.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros() as u64;
    assert!(before_us <= started_us && started_us < before_us + 5_000_000, "{started_us} vs {before_us}");
    let rfc3339 = report["started_at"]["rfc3339"].as_str().unwrap();
    assert!(rfc3339.ends_with('Z') && rfc3339.len() == "2026-01-01T00:00:00.000000Z".len(), "{rfc3339}");
    assert!(stdout.contains(rfc3339), "{stdout}");
    assert!(!report["host"].as_str().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
