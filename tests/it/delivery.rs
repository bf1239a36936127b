//! `run --send-time` against the built-in server and servers that batch their events: each event's delivery lag,
//! the reads that brought several events, and the `delivery` verdict they add up to, in the report and its JSON.

use crate::util::{read_json, run_args, serve_args, ssebench, temp_dir};

/// Each of 10 streams gets 50 events 10 ms apart; on loopback each event arrives alone, promptly.
#[test]
fn the_built_in_server_on_loopback_is_direct_with_a_lag_per_event() {
    let server = serve_args(&["--events", "50", "--interval", "10ms", "--size", "60"]);
    let url = format!("http://{}/", server.addr);
    let report = run_args(&[&url, "-c", "10", "-n", "10", "--send-time", "stamp"]);
    let f = &report.figures;
    assert_eq!((f.streams.completed, f.events.received), (10, 500));
    let (lag, d) = (&f.latency_us.delivery_lag, &f.delivery);
    assert_eq!(lag.count, 500, "one lag per event");
    assert_eq!((d.events_without_send_time, d.negative_lag_events), (0, 0));
    assert_eq!(d.verdict, "direct", "{}", d.evidence);
    assert_eq!(d.send_time.as_deref(), Some("stamp"));
    // Same host, same clock: each event is read within a second of its stamp, however loaded the machine.
    assert!(lag.max < 1_000_000, "lag max {} us", lag.max);
    assert!(d.reads_with_events >= 10 && d.events_per_read >= 1.0);
    assert_eq!(f.latency_us.head_wait.count, 10, "one head wait per stream");
    // Per interval too: the timeline's lag counts add up to the run's.
    let per_interval: u64 =
        report.timeline.iter().filter_map(|e| e.latency_us.get("delivery_lag_us")).map(|l| l.count).sum();
    assert_eq!(per_interval, 500);
}

/// Without `--send-time` nothing is timed against a send time, and the verdict says why it is unknown.
#[test]
fn without_send_times_the_verdict_is_unknown_and_says_why() {
    let server = serve_args(&["--events", "30", "--interval", "1ms", "--size", "20"]);
    let report = run_args(&[&format!("http://{}/", server.addr), "-c", "2", "-n", "2"]);
    let f = &report.figures;
    assert_eq!(f.events.received, 60);
    assert_eq!((f.latency_us.delivery_lag.count, f.delivery.verdict.as_str()), (0, "unknown"));
    assert!(f.delivery.evidence.starts_with("no --send-time"), "{}", f.delivery.evidence);
}

/// A server that writes its events in bursts: each burst of 20 events sent 10 ms apart (by their stamps) arrives
/// in one write, so in one read: `coalesced`, with 20 events per read and a 190 ms spread.
#[test]
fn events_sent_apart_and_read_together_are_coalesced() {
    // Stamped as if sent over the last 190 ms: lags under a second (older would read as a hold: `buffered`).
    let base_us =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64 - 190_000;
    let burst: String = (0..20u64).map(|i| format!("data: {} x\n\n", base_us + i * 10_000)).collect();
    let body = burst.repeat(3);
    let response =
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    // About one burst per write (the head shifts them a little), 2 ms apart: reads of many events each.
    let server = crate::util::replay(response.as_bytes(), burst.len());
    let dir = temp_dir("delivery-coalesced");
    let json = dir.join("run.json");
    let out = ssebench()
        .args(["run", &format!("http://{}/", server.addr), "-c", "1", "-n", "1", "-t", "1"])
        .args(["--send-time", "stamp", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = read_json(&json);
    let d = &report["delivery"];
    assert_eq!(report["events"]["received"], 60);
    assert_eq!(d["verdict"], "coalesced", "{d}");
    assert!(d["events_in_shared_reads"].as_u64().unwrap() >= 50, "{d}");
    assert!(d["events_per_read"].as_f64().unwrap() >= 10.0, "{d}");
    assert_eq!(d["send_spread_in_read_us"]["max"].as_u64().unwrap() / 10_000, 19, "{d}");
    // The stamps are from the past: no lag is negative.
    assert_eq!(d["negative_lag_events"], 0);
    assert_eq!(report["latency_us"]["delivery_lag"]["count"], 60);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Delivery  coalesced: events sent up to"), "{text}");
}

/// A send time that no event carries measures no lag: an objective on it fails rather than passing on nothing.
#[test]
fn an_objective_on_a_lag_never_measured_fails() {
    let server = serve_args(&["--events", "5", "--interval", "1ms"]);
    let url = format!("http://{}/", server.addr);
    let out = ssebench()
        .args([
            "run",
            &url,
            "-c",
            "1",
            "-n",
            "1",
            "-t",
            "1",
            "--send-time",
            "$.nothere",
            "--slo",
            "delivery_lag.p99<1s",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("5 events carried no readable send time"), "{text}");
}

#[test]
fn send_time_flags_are_checked() {
    let out = ssebench().args(["run", "http://127.0.0.1:1/", "--send-time", "created"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--send-time \"created\""));
    let out = ssebench().args(["run", "http://127.0.0.1:1/", "--send-time-unit", "ms"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--send-time-unit applies to --send-time"));
    let out = ssebench().args(["run", "http://127.0.0.1:1/", "--slo", "delivery_lag.p99<1s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it needs --send-time"));
}

/// A core that parses events as fast as a server can hand them over (a long response of tiny events, written in
/// 64 KiB pieces with no pause) is busy all the time: the generator says it was saturated, and when.
#[test]
fn a_core_that_cannot_keep_up_says_it_was_saturated() {
    let body = "data: x\n\n".repeat(4_000_000);
    let response =
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let server = crate::util::serve(replaying(response.into_bytes()));
    let url = format!("http://{}/", server.addr);
    let report = run_args(&[&url, "-c", "4", "-d", "3s", "--report-interval", "500ms"]);
    let g = report.figures.generator.as_ref().expect("the generator measured");
    assert!(report.figures.events.received > 100_000, "events flowed: {}", report.figures.events.received);
    assert!(g.saturated && g.saturated_intervals_count > 0, "{g:?}");
    assert!(!g.saturated_intervals.is_empty(), "{g:?}");
}

/// A few streams of one event every 100 ms leave the core idle nearly all the time. (Only its busy share is
/// asserted: a timer may still fire late when other tests load this machine.)
#[test]
fn a_core_with_little_to_do_is_far_from_busy() {
    let server = serve_args(&["--events", "0", "--interval", "100ms", "--size", "60"]);
    let report = run_args(&[&format!("http://{}/", server.addr), "-c", "4", "-d", "2s", "--report-interval", "500ms"]);
    let g = report.figures.generator.as_ref().expect("the generator measured");
    assert!(report.figures.events.received >= 40, "{}", report.figures.events.received);
    assert!(g.busy_max < 0.5, "{g:?}");
    // Saturation needs a busy core (a timer late on an idle one is the host's contention): this one was not.
    assert!(!g.saturated, "{g:?}");
    assert!(g.cores_busy.len() == 1 && g.cores_busy[0] < 0.5, "{g:?}");
    let busy: Vec<(f64, f64)> = report.timeline.iter().map(|e| (e.t_s, e.generator_busy)).collect();
    assert!(!busy.is_empty() && busy.iter().all(|(_, b)| *b < 0.5), "{busy:?}");
}

fn replaying(response: Vec<u8>) -> ssebench::server::ServeConfig {
    ssebench::server::ServeConfig { replay: Some(response), ..crate::util::serve_cfg() }
}
