//! The generator against the built-in server (and small scripted servers) in one process: exact counts of
//! streams, events and failure classes, each timeout and load shape, and the binary's exit codes and reports.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ssebench::config::{DriverChoice, RunConfig, Target};
use ssebench::report::Report;
use ssebench::server::ServeConfig;

use crate::util::{
    LOOPBACK, SSE_HEAD, failures, free_addr, model_server, read_head, read_json, replay, run, run_cfg, run_n,
    scripted_server, serve, serve_cfg, sse_server, ssebench, temp_dir,
};

#[test]
fn every_event_of_every_stream_is_counted() {
    let server = serve(ServeConfig { events: 50, ..serve_cfg() });
    let report = run(&RunConfig { streams_limit: Some(200), threads: 2, ..run_cfg(server.addr, 200) });
    assert_eq!(report.figures.events.received, 10_000);
    assert_eq!(
        (report.figures.streams.started, report.figures.streams.completed, report.figures.streams.failed),
        (200, 200, 0)
    );
    assert_eq!(report.figures.events_per_stream.min, 50);
    assert_eq!(report.figures.events_per_stream.max, 50);
    assert_eq!(report.figures.latency_us.first_event.count, 200);
    assert_eq!(report.figures.latency_us.gap.count, 200 * 49);
    assert!(report.figures.streams.peak_concurrent <= 200);
    assert_eq!(report.figures.streams.success_rate, 1.0);
    server.stop();
}

#[test]
fn streams_limit_stops_after_exactly_n() {
    let server = serve(ServeConfig { events: 3, ..serve_cfg() });
    for (connections, n) in [(10, 37), (1, 1), (5, 5)] {
        let report = run_n(server.addr, connections, n);
        assert_eq!(report.figures.streams.started, n);
        assert_eq!(report.figures.streams.completed, n);
        assert_eq!(report.figures.events.received, 3 * n);
    }
    server.stop();
}

#[test]
fn keep_alive_connections_are_reused() {
    let server = serve(ServeConfig { events: 2, ..serve_cfg() });
    let report = run_n(server.addr, 1, 20);
    assert_eq!(report.figures.streams.completed, 20);
    assert_eq!(report.figures.latency_us.connect.count, 1, "one connection carried all 20 streams");
    server.stop();
}

#[test]
fn duration_closes_open_streams_on_time() {
    let server = serve(ServeConfig { events: 0, interval: Duration::from_millis(10), ..serve_cfg() });
    let started = Instant::now();
    let report = run(&RunConfig { duration: Some(Duration::from_secs(1)), ..run_cfg(server.addr, 50) });
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1800), "run took {elapsed:?}");
    assert_eq!(report.figures.streams.interrupted, 50);
    assert_eq!(report.figures.streams.failed, 0);
    assert_eq!(report.figures.streams.peak_concurrent, 50);
    assert!(report.figures.events.received > 50 * 50, "{} events", report.figures.events.received);
    // Every event after a stream's first is one gap.
    let (first, gap) = (report.figures.latency_us.first_event, report.figures.latency_us.gap);
    assert_eq!(first.count, 50);
    assert_eq!(gap.count, report.figures.events.received - 50);
    // Gaps come from a 10 ms schedule; a loaded machine only stretches them (or bunches a late few).
    assert!(gap.p50 >= 8_000, "gap p50 {} us", gap.p50);
    assert!(gap.min <= gap.p50 && gap.p50 <= gap.p90 && gap.p90 <= gap.max, "{gap:?}");
    server.stop();
}

#[test]
fn first_event_latency_includes_the_servers_first_delay() {
    let server = serve(ServeConfig { events: 2, first_delay: Duration::from_millis(50), ..serve_cfg() });
    let report = run_n(server.addr, 4, 8);
    let first = report.figures.latency_us.first_event;
    assert_eq!(first.count, 8);
    assert!(first.min >= 50_000, "first event after {} us", first.min);
    assert!(report.figures.latency_us.headers.max < first.min, "headers come before the delayed first event");
    server.stop();
}

/// `streams` streams by `connections` users against a `replay` server that answers `response` whole, then stops.
fn answered(response: &[u8], connections: usize, streams: u64) -> Report {
    let server = replay(response, 1 << 16);
    let report = run_n(server.addr, connections, streams);
    server.stop();
    report
}

#[test]
fn http_status_is_counted_with_its_code() {
    let report = answered(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", 2, 6);
    assert_eq!(report.figures.streams.failed, 6);
    assert_eq!(failures(&report, "http_404"), 6);
    assert_eq!(report.figures.latency_us.headers.count, 6);
}

#[test]
fn wrong_content_type_is_its_own_class() {
    let report = answered(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi", 1, 3);
    assert_eq!(failures(&report, "wrong_content_type"), 3);
}

#[test]
fn server_closing_mid_event_is_a_premature_eof() {
    // Close-delimited body: the first event is whole, the second is cut off.
    let report = answered(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: one\n\ndata: tw", 1, 2);
    assert_eq!(failures(&report, "premature_eof"), 2);
    assert_eq!(report.figures.events.received, 2, "the whole first event of each stream still counts");
    // A chunked body cut before its last chunk.
    let report = answered(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: ",
        1,
        1,
    );
    assert_eq!(failures(&report, "premature_eof"), 1);
}

#[test]
fn oversized_event_is_counted_not_buffered() {
    let server = serve(ServeConfig { events: 3, size_bytes: 8 * 1024, ..serve_cfg() });
    let report = run(&RunConfig { streams_limit: Some(4), max_event_size_bytes: 1024, ..run_cfg(server.addr, 2) });
    assert_eq!(failures(&report, "event_too_large"), 4);
    assert_eq!(report.figures.events.received, 0);
    server.stop();
}

#[test]
fn malformed_response_is_classified() {
    let report = answered(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        1,
        2,
    );
    assert_eq!(failures(&report, "malformed_http"), 2);
    let report = answered(b"NOT HTTP AT ALL\r\n\r\n", 1, 2);
    assert_eq!(failures(&report, "malformed_http"), 2);
}

#[test]
fn refused_connection_is_counted() {
    let addr = free_addr();
    let report = run_n(addr, 2, 10);
    assert_eq!(failures(&report, "connect_refused"), 10);
    assert_eq!(report.figures.streams.started, 10);
}

#[test]
fn connect_timeout_is_counted() {
    // A listener that never accepts: once its accept queue is full the kernel drops SYNs, so
    // further connects hang until --connect-timeout.
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.bind(&LOOPBACK.into()).unwrap();
    listener.listen(1).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let cfg = RunConfig {
        duration: Some(Duration::from_millis(1500)),
        connect_timeout: Duration::from_millis(200),
        ..run_cfg(addr, 8)
    };
    let report = run(&cfg);
    assert!(failures(&report, "connect_timeout") >= 1, "{:?}", report.figures.streams.failures);
    assert_eq!(report.figures.streams.failed, failures(&report, "connect_timeout"));
    drop(listener);
}

#[test]
fn epoll_fallback_runs_the_same_engine() {
    let server = serve(ServeConfig { events: 5, driver: DriverChoice::Epoll, ..serve_cfg() });
    let report = run(&RunConfig { streams_limit: Some(40), driver: DriverChoice::Epoll, ..run_cfg(server.addr, 8) });
    assert_eq!(report.engine.driver, "epoll");
    assert_eq!(report.figures.events.received, 200);
    assert_eq!(report.figures.streams.failed, 0);
    server.stop();
}

/// Byte-exact streams, each served as a whole response, in one piece and one byte per write.
/// The expected counts are what a browser's EventSource dispatches.
#[test]
fn event_counts_match_eventsource_for_byte_exact_streams() {
    let sse_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n";
    let cases: &[(&str, String, u64)] = &[
        ("LF", format!("{sse_head}\r\ndata: a\n\ndata: b\n\n"), 2),
        ("CRLF", format!("{sse_head}\r\ndata: a\r\n\r\ndata: b\r\n\r\n"), 2),
        ("CR", format!("{sse_head}\r\ndata: a\r\rdata: b\r\r"), 2),
        ("mixed", format!("{sse_head}\r\ndata: a\r\n\ndata: b\r\rdata: c\n\r\n"), 3),
        ("BOM", format!("{sse_head}\r\n\u{feff}data: a\n\n"), 1),
        ("comments", format!("{sse_head}\r\n: hi\n\n:\ndata: a\n: mid\n\n"), 1),
        ("empty data dispatches nothing", format!("{sse_head}\r\nevent: x\n\nid: 3\n\ndata: a\n\n"), 1),
        ("field without colon", format!("{sse_head}\r\ndata\n\ndata\ndata\n\n"), 2),
        ("unfinished event is dropped", format!("{sse_head}\r\ndata: a\n\ndata: b\n"), 1),
        ("multi-line data", format!("{sse_head}\r\ndata: a\ndata: b\nid: 1\nevent: e\nretry: 10\n\n"), 1),
        ("content-length", format!("{sse_head}Content-Length: 18\r\n\r\ndata: a\n\ndata: b\n\n"), 2),
        (
            "chunk extensions",
            format!(
                "{sse_head}Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\ndata:\r\n4;a=\"q;x\"\r\n a\n\n\r\nA\r\ndata: bc\n\n\r\n0\r\nX-Trailer: t\r\n\r\n"
            ),
            2,
        ),
        (
            "uppercase chunk size",
            format!("{sse_head}Transfer-Encoding: chunked\r\n\r\nA\r\ndata: bc\n\n\r\n0\r\n\r\n"),
            1,
        ),
    ];
    for (name, response, expected) in cases {
        for piece in [1 << 16, 7, 1] {
            let server = replay(response.as_bytes(), piece);
            let report = run_n(server.addr, 1, 1);
            assert_eq!(report.figures.events.received, *expected, "{name}, written {piece} bytes at a time");
            let premature = failures(&report, "premature_eof");
            let ok = report.figures.streams.completed + premature;
            assert_eq!(ok, 1, "{name}: {:?}", report.figures.streams.failures);
            server.stop();
        }
    }
}

#[test]
fn post_body_and_headers_reach_the_server() {
    // The built-in server skips a request body by its Content-Length; a wrong length would break the stream.
    let server = serve(ServeConfig { events: 2, ..serve_cfg() });
    let cfg = RunConfig {
        streams_limit: Some(6),
        method: "POST".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: br#"{"model":"m","stream":true}"#.to_vec().into(),
        ..run_cfg(server.addr, 1)
    };
    let report = run(&cfg);
    assert_eq!(report.figures.streams.completed, 6);
    assert_eq!(report.figures.latency_us.connect.count, 1, "keep-alive survives the request bodies");
    server.stop();
}

#[test]
fn binary_writes_json_report_and_uses_exit_codes() {
    let server = serve(ServeConfig { events: 5, ..serve_cfg() });
    let dir = temp_dir("json-report");
    let json_path = dir.join("out.json");
    let url = format!("http://{}/", server.addr);
    let output =
        ssebench().args(["run", &url, "-c", "4", "-n", "8", "-t", "1", "--json"]).arg(&json_path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("first event"), "{stdout}");
    let json = read_json(&json_path);
    assert_eq!(json["events"]["received"], 40);
    assert_eq!(json["streams"]["completed"], 8);
    assert!(json["engine"]["driver"].is_string());
    // The memory peak is the kernel's high-water mark, reset once the workers were set up: no spike missed.
    let memory = &json["memory"];
    assert_eq!(memory["peak_source"], "vmhwm", "{memory}");
    assert!(memory["rss_peak_kib"].as_u64().unwrap() >= memory["rss_before_kib"].as_u64().unwrap(), "{memory}");
    assert!(stdout.contains("MB peak (kernel high-water mark)"), "{stdout}");
    for key in ["connect", "headers", "first_event", "gap", "stream"] {
        for field in ["count", "min", "mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(json["latency_us"][key][field].is_number(), "latency_us.{key}.{field}");
        }
    }
    let bad = ssebench().args(["run", &url, "-c", "nope"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let bad = ssebench().args(["run", "ftp://x/"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("http://"));
    std::fs::remove_dir_all(&dir).ok();
    server.stop();
}

#[test]
fn bind_spreads_streams_over_source_addresses() {
    let (addr, requests) = sse_server(b"data: x\n\n");
    let cfg = RunConfig {
        streams_limit: Some(16),
        bind_addrs: ssebench::config::flags::parse_bind_list("127.0.0.1-127.0.0.4").unwrap(),
        threads: 2,
        ..run_cfg(addr, 8)
    };
    let report = run(&cfg);
    assert_eq!((report.figures.streams.completed, report.figures.events.received), (16, 16));
    let mut seen: Vec<String> = requests.try_iter().map(|r| r.peer.to_string()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]);
}

#[test]
fn several_targets_and_listen_addresses_share_the_load() {
    let server = serve(ServeConfig {
        addrs: vec!["127.0.0.1:0".parse().unwrap(), "127.0.0.2:0".parse().unwrap()],
        events: 2,
        ..serve_cfg()
    });
    assert_eq!(server.addrs.len(), 2);
    let targets = server.addrs.iter().map(|a| Target::parse(&format!("http://{a}/")).unwrap()).collect();
    let report = run(&RunConfig { targets, streams_limit: Some(20), ..run_cfg(server.addr, 4) });
    assert_eq!((report.figures.streams.completed, report.figures.events.received), (20, 40));
    assert_eq!(report.figures.latency_us.connect.count, 4, "each user keeps its connection to its own target");
    server.stop();
}

/// In a network namespace of its own (needs root and `unshare`), with the port range cut to 100
/// ports: one source address cannot hold more than 100 streams to one server address; four
/// `--bind` addresses hold 300, three times the single-address limit. The same arithmetic takes
/// the default 28,232 ports to 112,928 streams per target address.
#[test]
fn bind_lifts_the_ephemeral_port_limit_in_a_namespace() {
    // CI runs as root with util-linux and iproute2: a machine without them fails here, loudly, rather than pass.
    let probe = Command::new("unshare").args(["-n", "true"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "cannot create a network namespace (this test needs root and util-linux unshare): {probe:?}"
    );
    let bin = env!("CARGO_BIN_EXE_ssebench");
    let dir = temp_dir("netns");
    let dir_s = dir.display();
    let script = format!(
        r#"set -e
ip link set lo up
echo "40000 40099" > /proc/sys/net/ipv4/ip_local_port_range
{bin} serve --addr 127.0.0.1:9000 --events 0 --interval 200ms -t 1 >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
sleep 0.5
{bin} run http://127.0.0.1:9000/ -c 300 -d 2s -t 1 --json {dir_s}/single.json >/dev/null
{bin} run http://127.0.0.1:9000/ -c 300 -d 2s -t 1 --bind 127.0.0.1-127.0.0.4 --json {dir_s}/bound.json >/dev/null
"#
    );
    let output = Command::new("unshare").args(["-n", "sh", "-c", &script]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json = |name: &str| read_json(&dir.join(name));
    let single = json("single.json");
    let held = single["streams"]["interrupted"].as_u64().unwrap();
    assert!(held <= 100, "one source address held {held} streams over 100 ports");
    assert!(single["streams"]["failures"]["ports_exhausted"].as_u64().unwrap() > 0, "{single}");
    let bound = json("bound.json");
    assert_eq!(bound["streams"]["failed"], 0, "{bound}");
    assert_eq!(bound["streams"]["interrupted"], 300, "{bound}");
    assert!(bound["events"]["received"].as_u64().unwrap() >= 300 * 5, "{bound}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn more_streams_than_descriptors_are_refused_before_connecting() {
    let hard = ssebench::limits::nofile().unwrap().hard;
    // CI's hard limit is 20,000; one in the tens of millions could not be exceeded by a test's -c.
    assert!(hard < 10_000_000, "the hard descriptor limit ({hard}) is too large to exceed in a test");
    // A port nothing listens on: a run that started anyway would count connect_refused.
    let streams = (hard + 1).max(50_000).to_string();
    let started = Instant::now();
    let output = ssebench().args(["run", "http://127.0.0.1:9/", "-c", &streams, "-d", "30s"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for part in [format!("{streams} concurrent streams"), format!("hard {hard}"), "tuning/README.md".to_string()] {
        assert!(stderr.contains(&part), "{part} missing: {stderr}");
    }
    assert!(output.stdout.is_empty(), "no report for a run that never started");
}

/// At the deadline a user is waiting on a kept-alive connection; the shutdown looks like a stale
/// connection, which must not be retried on a new one after the run is over.
#[test]
fn the_run_ends_on_time_while_a_kept_alive_request_waits() {
    let listener = std::net::TcpListener::bind(LOOPBACK).unwrap();
    let addr = listener.local_addr().unwrap();
    let (late_tx, late_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let late = late_tx.clone();
            std::thread::spawn(move || {
                if read_head(&mut conn).is_none() {
                    return;
                }
                if i > 0 {
                    // Any later connection gets an endless stream.
                    let _ = late.send(i);
                    let _ = conn.write_all(SSE_HEAD);
                    while conn.write_all(b"data: x\n\n").is_ok() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    return;
                }
                // The first: one short kept-alive response, then silence on the next request.
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 9\r\n\r\ndata: a\n\n",
                );
                let mut sink = [0u8; 256];
                while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let cfg = RunConfig { duration: Some(Duration::from_millis(500)), ..run_cfg(addr, 1) };
    std::thread::spawn(move || {
        let _ = done_tx.send(run(&cfg));
    });
    let report = done_rx.recv_timeout(Duration::from_secs(5)).expect("a -d 500ms run ended within 5 s");
    assert_eq!(
        (report.figures.streams.completed, report.figures.streams.interrupted, report.figures.streams.failed),
        (1, 1, 0)
    );
    assert!(late_rx.try_recv().is_err(), "no connection opened after the deadline");
}

#[test]
fn a_stream_that_never_sent_its_request_counts_no_events() {
    let listener = std::net::TcpListener::bind(LOOPBACK).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        drop(listener); // the next connect is refused
        read_head(&mut conn);
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: a\n\ndata: b\n\ndata: c\n\n",
        );
    });
    let report = run_n(addr, 1, 2);
    assert_eq!(
        (report.figures.streams.completed, failures(&report, "connect_refused"), report.figures.events.received),
        (1, 1, 3)
    );
    assert_eq!((report.figures.events_per_stream.min, report.figures.events_per_stream.max), (0, 3));
}

#[test]
fn header_timeout_is_its_own_class() {
    let (addr, _) = scripted_server(|_, _| std::thread::sleep(Duration::from_secs(3)));
    let cfg = RunConfig { header_timeout: Some(Duration::from_millis(200)), ..run_cfg(addr, 2) };
    let report = run(&RunConfig { streams_limit: Some(2), ..cfg });
    assert_eq!((failures(&report, "header_timeout"), report.figures.streams.failed), (2, 2));
}

#[test]
fn first_event_timeout_is_its_own_class() {
    let server = serve(ServeConfig { events: 1, first_delay: Duration::from_secs(3), ..serve_cfg() });
    let cfg = RunConfig { first_event_timeout: Some(Duration::from_millis(200)), ..run_cfg(server.addr, 2) };
    let report = run(&RunConfig { streams_limit: Some(2), ..cfg });
    assert_eq!((failures(&report, "first_event_timeout"), report.figures.latency_us.headers.count), (2, 2));
    server.stop();
}

/// The server keeps sending comment heartbeats but no event: that is idle, not byte-idle.
#[test]
fn heartbeats_do_not_keep_an_idle_stream_alive() {
    let (addr, _) = scripted_server(|conn, _| {
        let _ = conn.write_all(SSE_HEAD);
        let _ = conn.write_all(b"data: one\n\n");
        for _ in 0..60 {
            if conn.write_all(b": heartbeat\n\n").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let cfg = RunConfig {
        streams_limit: Some(1),
        idle_timeout: Some(Duration::from_millis(400)),
        byte_idle_timeout: Some(Duration::from_millis(200)),
        ..run_cfg(addr, 1)
    };
    let started = Instant::now();
    let report = run(&cfg);
    assert_eq!((failures(&report, "idle_timeout"), failures(&report, "byte_idle_timeout")), (1, 0));
    assert_eq!(report.figures.events.received, 1);
    assert!(started.elapsed() < Duration::from_millis(1500), "failed after {:?}", started.elapsed());
}

#[test]
fn a_silent_connection_is_a_byte_idle_timeout() {
    let (addr, _) = scripted_server(|conn, _| {
        let _ = conn.write_all(SSE_HEAD);
        let _ = conn.write_all(b"data: one\n\n");
        std::thread::sleep(Duration::from_secs(3));
    });
    let cfg =
        RunConfig { streams_limit: Some(1), byte_idle_timeout: Some(Duration::from_millis(200)), ..run_cfg(addr, 1) };
    let report = run(&cfg);
    assert_eq!((failures(&report, "byte_idle_timeout"), report.figures.events.received), (1, 1));
}

#[test]
fn long_gaps_are_counted_as_stalls() {
    let server = serve(ServeConfig { events: 5, interval: Duration::from_millis(40), ..serve_cfg() });
    let cfg = RunConfig {
        streams_limit: Some(2),
        stall_threshold: Some(Duration::from_millis(20)),
        ..run_cfg(server.addr, 1)
    };
    let report = run(&cfg);
    assert_eq!(report.figures.events.received, 10);
    assert_eq!(report.figures.events.stalls, 8, "every 40 ms gap is over 20 ms");
    assert_eq!(report.figures.latency_us.max_gap.count, 2, "one longest gap per stream");
    assert!(report.figures.latency_us.max_gap.min >= 30_000, "{:?}", report.figures.latency_us.max_gap);
    let relaxed = RunConfig { stall_threshold: Some(Duration::from_millis(500)), ..cfg };
    assert_eq!(run(&relaxed).figures.events.stalls, 0);
    server.stop();
}

#[test]
fn ctrl_c_prints_the_report_at_once() {
    let server = serve(ServeConfig { events: 0, interval: Duration::from_millis(20), ..serve_cfg() });
    let url = format!("http://{}/", server.addr);
    // A plain run, and load shapes whose next step is far off (the next stage in 60 s, the next
    // arrival in 30 s): none of them may hold the report back.
    for (args, expect) in [
        (&["-c", "20", "-d", "60s"][..], "20 still open when stopped"),
        (&["--stages", "5:60s,50:60s"], "== Stage 1: 5 streams"),
        (&["--arrival-rate", "0.033", "-d", "60s"], "Arrivals  1 scheduled, 1 started"),
    ] {
        let child = ssebench().args(["run", &url, "-t", "1"]).args(args).stdout(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let sent = Instant::now();
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let output = child.wait_with_output().unwrap();
        assert!(sent.elapsed() < Duration::from_secs(1), "{args:?}: report after {:?}", sent.elapsed());
        assert_eq!(output.status.code(), Some(130), "{args:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("Stopped   by Ctrl-C"), "{stdout}");
        assert!(stdout.contains(expect), "{args:?}: {stdout}");
    }
    server.stop();
}

#[test]
fn stream_duration_closes_streams_as_completed() {
    let server = serve(ServeConfig { events: 0, interval: Duration::from_millis(20), ..serve_cfg() });
    let cfg = RunConfig {
        duration: Some(Duration::from_millis(1300)),
        stream_duration: Some((Duration::from_millis(300), Duration::from_millis(300))),
        ..run_cfg(server.addr, 5)
    };
    let report = run(&cfg);
    assert_eq!(report.figures.streams.failed, 0, "{:?}", report.figures.streams.failures);
    assert!(report.figures.streams.completed >= 10, "{} completed", report.figures.streams.completed);
    let stream = report.figures.latency_us.stream;
    // Most streams ran their full 300 ms (the rest were cut by the end of the run).
    assert!(stream.p50 >= 300_000, "stream p50 {} us", stream.p50);
    assert!(stream.p50 <= stream.max, "{stream:?}");
    assert_eq!(report.figures.latency_us.premature_end.count, 0, "none ended before 300 ms");
    server.stop();
}

/// The server ends every stream after its 10th event (180 ms in), before the 2 s the client intends: each is a
/// premature end, at least 180 ms old and younger than the 2 s it was meant to last.
#[test]
fn streams_ended_before_their_length_show_when_they_ended() {
    let server = serve(ServeConfig { events: 10, interval: Duration::from_millis(20), ..serve_cfg() });
    let cfg = RunConfig {
        streams_limit: Some(6),
        stream_duration: Some((Duration::from_secs(2), Duration::from_secs(3))),
        ..run_cfg(server.addr, 3)
    };
    let report = run(&cfg);
    assert_eq!(report.figures.streams.completed, 6);
    let ended = report.figures.latency_us.premature_end;
    assert_eq!(ended.count, 6);
    assert!(ended.min >= 180_000, "ended early at {} us", ended.min);
    assert!(ended.p50 <= ended.max && ended.max < 2_000_000, "{ended:?}");
    server.stop();
}

#[test]
fn a_failed_slo_exits_1_and_says_which() {
    let server = serve(ServeConfig { events: 5, first_delay: Duration::from_millis(50), ..serve_cfg() });
    let url = format!("http://{}/", server.addr);
    let slo_run = |slos: &[&str]| {
        let mut cmd = ssebench();
        cmd.args(["run", &url, "-c", "2", "-n", "4", "-t", "1"]);
        for slo in slos {
            cmd.args(["--slo", slo]);
        }
        cmd.output().unwrap()
    };
    let pass = slo_run(&["first_event.p50 > 40ms", "success_rate >= 100%", "events_per_stream.min>=5"]);
    assert_eq!(pass.status.code(), Some(0), "{}", String::from_utf8_lossy(&pass.stdout));
    let out = String::from_utf8_lossy(&pass.stdout);
    assert_eq!(out.matches("SLO  pass").count(), 3, "{out}");
    let fail = slo_run(&["first_event.p99<10ms", "success_rate>=99%"]);
    assert_eq!(fail.status.code(), Some(1));
    let out = String::from_utf8_lossy(&fail.stdout);
    let measured =
        out.split("SLO  FAIL  first_event.p99<10ms  (measured ").nth(1).and_then(|rest| rest.split(')').next());
    let measured = ssebench::units::parse_duration(measured.unwrap_or_else(|| panic!("{out}"))).unwrap();
    assert!(measured >= Duration::from_millis(50), "measured {measured:?}, after the server's 50 ms first delay");
    assert!(out.contains("SLO  pass  success_rate>=99%  (measured 100.000%)"), "{out}");
    let bad = ssebench().args(["run", &url, "--slo", "latency<1s"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--slo 'latency<1s'"));
    server.stop();
}

/// The server cuts every connection after 7 events; users reconnect with Last-Event-ID and the
/// server resumes after it: every user gets events 1..=30 exactly once.
#[test]
fn reconnects_resume_with_no_event_lost_or_repeated() {
    let server = serve(ServeConfig { events: 30, disconnect_after: Some(7), ..serve_cfg() });
    let cfg = RunConfig {
        duration: Some(Duration::from_millis(1500)),
        reconnect: true,
        retry_default: Duration::from_millis(20),
        verify_seq: true,
        ..run_cfg(server.addr, 4)
    };
    let report = run(&cfg);
    assert_eq!(report.figures.events.received, 4 * 30, "{:?}", report.figures.streams);
    assert_eq!((report.figures.events.lost, report.figures.events.duplicates), (0, 0));
    // 30 events in cuts of 7: four cuts per user before its stream completes.
    assert_eq!(failures(&report, "premature_eof"), 4 * 4);
    assert!(report.figures.streams.reconnects >= 4 * 4, "{} reconnects", report.figures.streams.reconnects);
    assert!(report.figures.latency_us.reconnect_delay.min >= 20_000, "{:?}", report.figures.latency_us.reconnect_delay);
    server.stop();
}

#[test]
fn verify_seq_counts_lost_and_repeated_ids() {
    let body = "id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 5\ndata: c\n\nid: 5\ndata: d\n\nid: 6\ndata: e\n\n";
    let response = format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n{body}");
    let server = replay(response.as_bytes(), 1 << 16);
    let report = run(&RunConfig { streams_limit: Some(1), verify_seq: true, ..run_cfg(server.addr, 1) });
    assert_eq!(report.figures.events.received, 5);
    assert_eq!((report.figures.events.lost, report.figures.events.duplicates), (2, 1), "ids 3 and 4 lost, 5 repeated");
    server.stop();
}

/// A step ramp up and down: each stage's own figures show its target concurrency, and an
/// objective that only the middle stage misses names it as the breakpoint.
#[test]
fn stages_hold_each_target_and_name_the_breakpoint() {
    let server = serve(ServeConfig { events: 0, interval: Duration::from_millis(100), ..serve_cfg() });
    let stage = |streams, ms| ssebench::config::Stage { streams, hold: Duration::from_millis(ms) };
    let cfg = RunConfig {
        stages: vec![stage(20, 1000), stage(50, 1000), stage(10, 800)],
        connect_rate_per_s: Some(200.0),
        // 20 and 10 streams send 200 and 100 events/s; 50 send 500.
        slos: vec![ssebench::slo::Slo::parse("events_per_s<300").unwrap()],
        ..run_cfg(server.addr, 50)
    };
    let started = Instant::now();
    let report = run(&cfg);
    // 100 ms to ramp to 20, 150 ms more to 50: 3.05 s in all.
    assert!(started.elapsed() < Duration::from_millis(4000), "{:?}", started.elapsed());
    let table: Vec<(usize, u64, u64, u64, u64)> = report
        .stages
        .iter()
        .map(|s| {
            let streams = &s.figures.streams;
            (s.target_streams, streams.peak_concurrent, s.open_at_end, streams.open_at_start, streams.started)
        })
        .collect();
    assert_eq!(table, vec![(20, 20, 20, 0, 20), (50, 50, 50, 20, 30), (10, 10, 10, 50, 0)]);
    assert_eq!(report.figures.streams.peak_concurrent, 50);
    assert_eq!(report.figures.streams.failed, 0, "{:?}", report.figures.streams.failures);
    // The step down closed 40 streams, the end of the run the last 10: none of them failed.
    assert_eq!(report.stages[2].figures.streams.interrupted, 50);
    let verdicts: Vec<bool> = report.stages.iter().map(|s| s.slos[0].pass).collect();
    assert_eq!(verdicts, vec![true, false, true]);
    let breakpoint = report.breakpoint.as_ref().expect("stage 2 broke");
    assert_eq!((breakpoint.stage, breakpoint.target_streams), (2, 50));
    assert!(breakpoint.reason.contains("events_per_s<300"), "{}", breakpoint.reason);
    assert!(!report.slos_pass());
    server.stop();
}

/// 200 arrivals/s for 3 s with room for 50 streams of ~0.95 s each: about 52 streams/s fit,
/// the rest are dropped; latencies count from each stream's scheduled start.
#[test]
fn open_model_drops_what_max_streams_cannot_absorb() {
    let server = serve(ServeConfig {
        events: 10,
        interval: Duration::from_millis(100),
        first_delay: Duration::from_millis(50),
        ..serve_cfg()
    });
    let cfg = RunConfig {
        arrivals: Some(ssebench::config::Arrivals { rate_per_s: 200.0, poisson: false, max_streams: 50 }),
        duration: Some(Duration::from_secs(3)),
        ..run_cfg(server.addr, 50)
    };
    let report = run(&cfg);
    let streams = &report.figures.streams;
    let arrivals = streams.arrivals.as_ref().expect("open-model figures");
    assert_eq!(arrivals.scheduled, 600, "one every 5 ms for 3 s");
    assert_eq!(arrivals.started + arrivals.dropped, arrivals.scheduled);
    assert_eq!(arrivals.started, streams.started);
    // Each of the 50 slots runs streams back to back, 3 or 4 in 3 s (~176 in all) on an idle machine: a slot
    // frees within 5 ms of its stream's end; no stream is shorter than the server's 950 ms, so at most 4. A
    // loaded machine only lengthens streams, and three of 950 ms leave 150 ms of slack in 3 s (a CI neighbour
    // compiling took one under it), so the floor is two per slot: what shows that slots are reused at all. The
    // arrivals left over are dropped (counted exactly above).
    assert!(streams.started >= 50 * 2, "{} started", streams.started);
    assert!(streams.started <= 50 * 4, "{} started", streams.started);
    assert_eq!(streams.peak_concurrent, 50);
    assert_eq!(streams.failed, 0, "{:?}", streams.failures);
    let l = &report.figures.latency_us;
    assert_eq!(l.start_lag.count, streams.started);
    // Measured from the schedule: the server's 50 ms, plus the start's lag and the connect.
    assert!(l.first_event.min >= 50_000, "{}", l.first_event.min);
    assert!(l.first_event.min >= 50_000 + l.start_lag.min, "{} vs lag {}", l.first_event.min, l.start_lag.min);
    server.stop();
}

/// Per-user tokens from a CSV reach the server: with `vu` rows each user keeps its own, with
/// `request` rows every request takes the next one.
#[test]
fn per_user_tokens_from_a_csv_reach_the_server() {
    let dir = temp_dir("data");
    let users = dir.join("users.csv");
    let mut csv = String::from("user,token\n");
    for i in 0..8 {
        csv += &format!("u{i},\"tok-{i}\"\n");
    }
    std::fs::write(&users, csv).unwrap();
    for mode in [ssebench::template::DataMode::Vu, ssebench::template::DataMode::Request] {
        let (addr, requests) = sse_server(b"data: x\n\n");
        let mut cfg = RunConfig {
            streams_limit: Some(8),
            headers: vec![("Authorization".into(), "Bearer {{token}}".into())],
            data: Some(std::sync::Arc::new(ssebench::template::DataSet::load(&users).unwrap())),
            data_mode: mode,
            ..run_cfg(addr, 4)
        };
        cfg.targets[0].path = "/events?user={{user}}&seq={{seq}}&vu={{vu}}".into();
        let report = run(&cfg);
        assert_eq!(report.figures.streams.completed, 8, "{:?}", report.figures.streams.failures);
        let mut seen: Vec<(String, String, String)> = requests
            .try_iter()
            .map(|request| {
                let query = request.path().to_string();
                let token =
                    request.head.lines().find_map(|l| l.strip_prefix("Authorization: Bearer ")).unwrap().to_string();
                let user = query.split(['?', '&']).find_map(|kv| kv.strip_prefix("user=")).unwrap().to_string();
                (user, token, query)
            })
            .collect();
        seen.sort();
        for (user, token, _) in &seen {
            assert_eq!(token.strip_prefix("tok-"), user.strip_prefix('u'), "{user} got {token}");
        }
        let tokens: Vec<&str> = seen.iter().map(|(_, t, _)| t.as_str()).collect();
        match mode {
            // Users 0..3 each run 2 streams, each on its own row.
            ssebench::template::DataMode::Vu => {
                assert_eq!(tokens, ["tok-0", "tok-0", "tok-1", "tok-1", "tok-2", "tok-2", "tok-3", "tok-3"]);
                assert!(seen[0].2.contains("seq=0") && seen[1].2.contains("seq=1"), "{seen:?}");
            }
            // Stream n of user u takes row n * 4 + u: every row once.
            ssebench::template::DataMode::Request => {
                assert_eq!(tokens, ["tok-0", "tok-1", "tok-2", "tok-3", "tok-4", "tok-5", "tok-6", "tok-7"]);
            }
        }
    }
    // A placeholder naming no column stops the run before it starts, naming the field.
    let output = ssebench()
        .args(["run", "http://127.0.0.1:9/", "-H", "X-Session: {{session}}", "--data"])
        .arg(&users)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("session") && stderr.contains("token"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_load_shape_flags_exit_2_naming_the_flag() {
    for (args, flag) in [
        (&["--stages", "100"][..], "--stages"),
        (&["--stages", "10:1s", "-c", "5"], "--stages"),
        (&["--arrival-rate", "0"], "--arrival-rate"),
        (&["--max-streams", "5"], "--max-streams"),
        (&["--arrival-rate", "5", "--max-streams", "0"], "--max-streams"),
        (&["--data-mode", "request"], "--data-mode"),
    ] {
        let output = ssebench().args(["run", "http://127.0.0.1:9/"]).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

/// A template the engine cannot build is the user's to fix: exit 2 with the template named, as when `validate()`
/// built templates itself (it only checks now; the engine builds every request once, before anything connects).
#[test]
fn a_bad_template_exits_2_before_anything_connects() {
    for (args, needle) in [(&["-H", "X: {{nope}}"][..], "nope"), (&["--body", "{{rand_int 5 1}}"], "rand_int")] {
        let output = ssebench().args(["run", "http://127.0.0.1:9/", "-d", "5s"]).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "no report: nothing ran");
    }
}

/// `serve --openai` streams like a model server: a role chunk, content chunks at the token rate,
/// the finish chunk, usage when asked, `[DONE]`; each is one SSE event.
#[test]
fn the_openai_server_streams_chunks_at_its_token_rate() {
    let server = model_server(100.0, 2, 1_000);
    let body = r#"{"model":"m","stream":true,"max_tokens":10,"stream_options":{"include_usage":true},
        "messages":[{"role":"user","content":"one two three four five six seven eight nine ten"}]}"#;
    let cfg = RunConfig {
        streams_limit: Some(4),
        method: "POST".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec().into(),
        ..run_cfg(server.addr, 2)
    };
    let report = run(&cfg);
    let f = &report.figures;
    assert_eq!(f.streams.completed, 4, "{:?}", f.streams.failures);
    // role + 5 content chunks of 2 tokens + finish + usage + [DONE]
    assert_eq!((f.events_per_stream.min, f.events_per_stream.max), (9, 9));
    // Per stream 8 gaps: role to first content 10 ms (10 prompt words x 1 ms), four of 20 ms between content
    // chunks (2 tokens at 100 tokens/s), then finish, usage and [DONE] at once: the top tenth are 20 ms ones.
    let (first, gap, stream) = (&f.latency_us.first_event, &f.latency_us.gap, &f.latency_us.stream);
    assert_eq!((first.count, gap.count, stream.count), (4, 4 * 8, 4));
    assert!(gap.p90 >= 19_000, "gap p90 {}", gap.p90);
    assert!(gap.p50 <= gap.p90 && gap.p90 <= gap.max, "{gap:?}");
    // The last content chunk is due 90 ms after the request; the role chunk (the first event) comes before it.
    assert!(stream.p50 >= 85_000, "stream p50 {}", stream.p50);
    assert!(first.p50 <= stream.p50 && first.max <= stream.max, "first event {first:?}, stream {stream:?}");
    server.stop();
}

/// `ServeConfig::new` is what `ssebench serve` runs without flags, so tests built on it start from the same server.
#[test]
fn serve_config_new_has_the_command_line_defaults() {
    let argv = ["ssebench", "serve", "--addr", "127.0.0.1:0"];
    let ssebench::cli::Command::Serve(parsed) = ssebench::cli::parse_from(argv).unwrap() else { panic!("not serve") };
    assert_eq!(format!("{parsed:?}"), format!("{:?}", ServeConfig::new(LOOPBACK)));
}
