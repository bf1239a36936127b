//! `ssebench run --hdr-log`: the HdrHistogram interval log, read by an independent implementation (the Python
//! `hdrhistogram` package, `hdrh`) through `tests/fixtures/hdr_log/summarize.py`. Added up per tag, the intervals give
//! the JSON report's counts exactly and its p50, p99 and max at the interval histograms' precision.
//!
//! The interpreter is `$SSEBENCH_PYTHON` (`.ci/run` sets it to its venv), else `target/ci-venv/bin/python` when that
//! exists. Without one that imports `hdrh` the tests fail, saying how to set it up: they never pass unchecked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;
use ssebench::recorder::HISTOGRAM_MAX;
use ssebench::server::ServeConfig;

use crate::util::{model_server, read_json, serve, serve_cfg, ssebench, temp_dir};

/// The Python interpreter with hdrhistogram, or a failure that says how to get one.
fn python() -> PathBuf {
    crate::util::python("hdrh.log", "hdrhistogram")
}

/// Runs `ssebench run URL ARGS --report-interval 250ms --hdr-log --json`; the log as hdrh sums it per tag, and the
/// JSON report.
fn run_logged(name: &str, url: &str, args: &[&str]) -> (Value, Value) {
    let python = python();
    let dir = temp_dir(name);
    let (log_path, json_path) = (dir.join("run.hlog"), dir.join("report.json"));
    let output = ssebench()
        .args(["run", url, "-t", "1", "--report-interval", "250ms"])
        .args(args)
        .arg("--hdr-log")
        .arg(&log_path)
        .arg("--json")
        .arg(&json_path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hdr_log/summarize.py");
    let summed = Command::new(&python).arg(&script).arg(&log_path).output().unwrap();
    assert!(summed.status.success(), "{}", String::from_utf8_lossy(&summed.stderr));
    let report = read_json(&json_path);
    (serde_json::from_slice(&summed.stdout).unwrap(), report)
}

/// What the log says of one metric against the JSON report's summary of it.
///
/// - `count`: equal. The intervals partition the run's samples (each core's last, partial snapshot included).
/// - `p50`, `p99`, `max`: the JSON report's value (a whole-run histogram of 3 significant digits) mapped to the top of
///   its 2-significant-digit bucket, exactly. Both sides take the same sample (the same rank, `ceil(q * count)`: the
///   script asks hdrh at that rank) and report the highest value equivalent to it at their precision; a 3-digit
///   bucket lies inside one 2-digit bucket (both are power-of-two aligned), so the log's value is the top of the
///   2-digit bucket holding the report's. That is at most 1% above it (2 significant digits: buckets 1/128 to 1/256
///   of their value wide), which is checked too, as the documented bound, and never below it.
fn assert_matches(tag: &str, log: &Value, json: &Value) {
    let coarse = Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX, 2).unwrap();
    let log = &log[tag];
    assert_eq!(log["count"], json["count"], "{tag}: count in the log {log} vs the report {json}");
    assert!(json["count"].as_u64().unwrap() > 0, "{tag}: no samples");
    for figure in ["p50", "p99", "max"] {
        let (from_log, from_json) = (log[figure].as_u64().unwrap(), json[figure].as_u64().unwrap());
        assert_eq!(from_log, coarse.highest_equivalent(from_json), "{tag} {figure}: log {log} vs report {json}");
        assert!(from_log >= from_json && (from_log - from_json) * 100 <= from_json, "{tag} {figure}: beyond 1%");
    }
}

/// Streams that end and reconnect (so connect, headers and first events keep coming), gaps every 2 ms.
#[test]
fn python_hdrh_reads_the_log_and_it_adds_up_to_the_report() {
    let server = serve(ServeConfig { events: 20, interval: Duration::from_millis(2), ..serve_cfg() });
    let url = format!("http://{}/", server.addr);
    let (log, report) = run_logged("hdr-log", &url, &["-c", "4", "-d", "1s"]);
    let tags: Vec<&String> = log.as_object().unwrap().keys().collect();
    assert_eq!(tags, ["connect", "first_event", "gap", "headers"], "{log}");
    for tag in ["connect", "headers", "first_event", "gap"] {
        assert_matches(tag, &log, &report["latency_us"][tag]);
    }
}

/// `--openai`: TTFT and ITL are logged too, tagged as the report names them.
#[test]
fn an_llm_run_logs_ttft_and_itl() {
    let server = model_server(500.0, 1, 100);
    let url = format!("http://{}/", server.addr);
    let (log, report) =
        run_logged("hdr-log-llm", &url, &["--openai", "chat", "--max-tokens", "20", "-c", "2", "-n", "8"]);
    for tag in ["ttft", "itl"] {
        assert_matches(tag, &log, &report["llm"][format!("{tag}_us")]);
    }
    assert_matches("first_event", &log, &report["latency_us"]["first_event"]);
}
