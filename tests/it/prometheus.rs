//! `run --metrics-addr` against a real Prometheus server (the distribution's `prometheus`, which `.ci/run` installs):
//! it scrapes a `--stages` run every second, and after the run its HTTP API must agree with the JSON report (events,
//! the first event's median within one bucket), show the open streams following the stages, and evaluate every
//! expression of the Grafana dashboard (`deploy/grafana/ssebench.json`). The exposition's text itself is
//! unit-tested (`metrics`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use ssebench::metrics::BUCKET_BOUNDS_US;

use crate::util::{Daemon, free_addr, installed, read_json, serve_args, ssebench, temp_dir};

/// A Prometheus server on loopback with its own storage, killed (and its directory removed) when dropped.
struct Prometheus {
    daemon: Daemon,
    addr: String,
}

impl Prometheus {
    /// Starts a server scraping `target` every second, and waits until it is ready.
    fn start(target: &str) -> Prometheus {
        let binary = installed("prometheus");
        let dir = temp_dir("prometheus");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ssebench\n    \
             scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let addr = free_addr().to_string();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"));
        let prometheus = Prometheus { daemon: Daemon::spawn(&mut command, dir), addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(&prometheus.addr, "/-/ready").is_none_or(|(status, _)| status != 200) {
            assert!(Instant::now() < deadline, "prometheus not ready in 20 s: {}", prometheus.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// Waits until the server has tried its target once (it finds it only some seconds after its start, its
    /// discovery's updates being throttled), so that the scrapes cover the run from its first second.
    fn wait_for_first_scrape(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let targets = self.api("targets", &[]);
            let health = &targets["data"]["activeTargets"][0]["health"];
            if health.as_str().is_some_and(|h| h != "unknown") {
                return;
            }
            assert!(Instant::now() < deadline, "no scrape in 20 s: {targets}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        self.daemon.output()
    }

    /// `/api/v1/<api>` with `params`: the answer's JSON (any status, so a failed evaluation can be reported).
    fn api(&self, api: &str, params: &[(&str, String)]) -> Value {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
        let (status, body) =
            get(&self.addr, &format!("/api/v1/{api}?{}", query.join("&"))).expect("prometheus answers");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body}: {e}"))
    }

    /// An instant query at `at_s` (Unix seconds), which must succeed: its result vector.
    fn query(&self, expr: &str, at_s: f64) -> Vec<Value> {
        let answer = self.api("query", &[("query", expr.to_string()), ("time", format!("{at_s:.3}"))]);
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        answer["data"]["result"].as_array().unwrap().clone()
    }

    /// The one series of an instant query, as a number.
    fn scalar(&self, expr: &str, at_s: f64) -> f64 {
        let result = self.query(expr, at_s);
        assert_eq!(result.len(), 1, "{expr}: one series, got {result:?}\n{}", self.log());
        number(&result[0]["value"][1])
    }
}

/// A sample's value, as the API writes it (a string).
fn number(value: &Value) -> f64 {
    value.as_str().unwrap().parse().unwrap()
}

/// Every byte but the unreserved ones as %XX.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 GET (so the answer is neither chunked nor kept alive): status and body; `None` when nothing
/// listens yet.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut conn = TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn unix_s() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The index of the bucket holding `us`: the first bound at or above it (past the last: `+Inf`).
fn bucket_of(us: f64) -> usize {
    BUCKET_BOUNDS_US.partition_point(|&bound| (bound as f64) < us)
}

/// Every `expr` in the dashboard, in order.
fn dashboard_exprs(path: &Path) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", Value::String(expr)) => out.push(expr.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let dashboard = read_json(path);
    let mut exprs = Vec::new();
    walk(&dashboard, &mut exprs);
    exprs
}

/// A 9 s run of three stages (5, 20 then 10 endless streams), scraped every second, its endpoint lingering 3 s.
#[test]
fn prometheus_scrapes_a_run_and_the_dashboard_evaluates() {
    let server = serve_args(&["--events", "0", "--interval", "20ms"]);
    let metrics_addr = free_addr().to_string();
    let prometheus = Prometheus::start(&metrics_addr);
    prometheus.wait_for_first_scrape();
    let dir = temp_dir("prometheus-run");
    let json_path = dir.join("report.json");
    let run_id = format!("it-prom-{}", std::process::id());
    let url = format!("http://{}/", server.addr);
    let start_s = unix_s();
    let output = ssebench()
        .args(["run", &url, "-t", "1", "--stages", "5:3s,20:3s,10:3s", "-q", "--metrics-linger", "3s"])
        .args(["--metrics-addr", &metrics_addr, "--run-id", &run_id, "--json"])
        .arg(&json_path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let end_s = unix_s();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("metrics stay at http://{metrics_addr}/metrics for 3s")), "{stderr}");
    let report = read_json(&json_path);
    server.stop();

    // At the process's end the last scrapes (of the linger) hold the final figures; later ones find it gone.
    let run = format!("run=\"{run_id}\"");
    let events = report["events"]["received"].as_u64().unwrap();
    assert!(events > 0);
    assert_eq!(prometheus.scalar(&format!("ssebench_events_total{{{run}}}"), end_s), events as f64);
    let started = report["streams"]["started"].as_u64().unwrap();
    assert_eq!(prometheus.scalar(&format!("ssebench_streams_started_total{{{run}}}"), end_s), started as f64);

    // Open streams and the target over the run, a sample a second: 5, then 20, then 10.
    let range = prometheus.api(
        "query_range",
        &[
            ("query", format!("ssebench_open_streams{{{run}}}")),
            ("start", format!("{start_s:.3}")),
            ("end", format!("{end_s:.3}")),
            ("step", "1".into()),
        ],
    );
    assert_eq!(range["status"], "success", "{range}");
    let open: Vec<f64> = range["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no open streams: {range}\n{}", prometheus.log()))
        .iter()
        .map(|v| number(&v[1]))
        .collect();
    let first_20 = open.iter().position(|&n| n == 20.0).unwrap_or_else(|| panic!("never 20 open: {open:?}"));
    let last_20 = open.iter().rposition(|&n| n == 20.0).unwrap();
    assert!(open[..first_20].contains(&5.0), "5 open before 20: {open:?}");
    assert!(open[last_20..].contains(&10.0), "down to 10 after 20: {open:?}");
    assert!(open.iter().all(|&n| n <= 20.0), "{open:?}");
    let targets = prometheus.query(&format!("max_over_time(ssebench_target_streams{{{run}}}[1m])"), end_s);
    assert_eq!(number(&targets[0]["value"][1]), 20.0);
    assert_eq!(prometheus.scalar(&format!("ssebench_target_streams{{{run}}}"), end_s), 10.0);
    assert_eq!(prometheus.scalar(&format!("ssebench_stage{{{run}}}"), end_s), 3.0);

    // The first event's median from the buckets, within one bucket of the report's (from all its samples).
    let expr = format!("histogram_quantile(0.5, sum by (le) (ssebench_first_event_seconds_bucket{{{run}}}))");
    let p50_s = prometheus.scalar(&expr, end_s);
    let report_p50_us = report["latency_us"]["first_event"]["p50"].as_f64().unwrap();
    let (theirs, ours) = (bucket_of(p50_s * 1e6), bucket_of(report_p50_us));
    assert!(theirs.abs_diff(ours) <= 1, "histogram_quantile {p50_s} s against the report's {report_p50_us} µs");

    // Every dashboard expression evaluates, with Grafana's variables as a user would have them.
    let dashboard = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/ssebench.json");
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in &exprs {
        let concrete = expr.replace("$__rate_interval", "5s").replace("$run", &run_id);
        assert!(!concrete.contains('$'), "a variable left in {concrete}");
        let answer = prometheus.api("query", &[("query", concrete.clone()), ("time", format!("{end_s:.3}"))]);
        assert_eq!(answer["status"], "success", "{concrete}: {answer}");
        // What this run has (everything but the LLM series and the failures it did not have) must show.
        let llm_or_failures = ["ttft", "itl", "tokens", "failed"].iter().any(|n| concrete.contains(n));
        if !llm_or_failures {
            assert!(!answer["data"]["result"].as_array().unwrap().is_empty(), "{concrete}: nothing");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `--metrics-addr` already in use stops the run before anything connects: exit 3, saying which flag.
#[test]
fn a_metrics_address_in_use_is_a_start_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // Nothing listens at the target: a run that started would fail its streams, not exit 3.
    let url = format!("http://{}/", free_addr());
    let output = ssebench().args(["run", &url, "-d", "1s", "-t", "1", "-q", "--metrics-addr", &addr]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("cannot serve --metrics-addr {addr}")), "{stderr}");
    assert!(output.stdout.is_empty(), "no report: the run never began");
}
