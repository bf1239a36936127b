//! ssebench behind real nginx and HAProxy (the distribution's packages, which `.ci/run` installs), each started in
//! the foreground with a generated configuration in a directory of its own: what each does to an event stream on
//! the wire (how many reads a 2 s stream arrives in, and when its first byte comes, read by a plain client) and what
//! `ssebench run` makes of it (every event counted through gzip and coalescing; streams cut by a read timeout
//! during a pause, or kept alive by heartbeats; the stage where nginx runs out of `worker_connections`).
//!
//! A missing proxy fails the test with what to run, never skips it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ssebench::report::Report;

use crate::util::{Daemon, RawReads, failures, free_addr, get_request, installed, run_args, serve_args, temp_dir};

/// A proxy on a loopback port, running in the foreground as this process's child; killed (and its directory
/// removed) when dropped.
struct Proxy {
    daemon: Daemon,
    addr: SocketAddr,
    /// nginx's error log (HAProxy has none without a syslog server: its alerts go to its standard error).
    error_log: Option<PathBuf>,
}

impl Proxy {
    /// nginx in one process (`master_process off`) on a free port, proxying `/` to `backend` over HTTP/1.1 with the
    /// connection header cleared (as its documentation says for kept-alive upstreams), `location` added to that
    /// location's directives.
    fn nginx(backend: SocketAddr, worker_connections: u32, location: &str) -> Proxy {
        let addr = free_addr();
        let dir = temp_dir(&format!("nginx-{}", addr.port()));
        let path = |name: &str| dir.join(name).display().to_string();
        let temp_paths = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(|kind| {
            let dir = path(kind);
            format!("    {kind}_temp_path {dir};")
        });
        let config = [
            "master_process off;".to_string(),
            "user root;".into(),
            "worker_processes 1;".into(),
            format!("pid {};", path("nginx.pid")),
            format!("error_log {} info;", path("error.log")),
            format!("events {{ worker_connections {worker_connections}; }}"),
            "http {".into(),
            "    access_log off;".into(),
            temp_paths.join("\n"),
            "    server {".into(),
            format!("        listen {addr};"),
            "        location / {".into(),
            format!("            proxy_pass http://{backend};"),
            "            proxy_http_version 1.1;".into(),
            "            proxy_set_header Connection \"\";".into(),
            format!("            {location}"),
            "        }".into(),
            "    }".into(),
            "}\n".into(),
        ]
        .join("\n");
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let error_log = dir.join("error.log");
        let mut command = Command::new(installed("nginx"));
        command.arg("-p").arg(&dir).arg("-e").arg(&error_log).arg("-c").arg(&conf);
        command.args(["-g", "daemon off;"]);
        Proxy::start(command, addr, dir, Some(error_log))
    }

    /// HAProxy in `mode http` on a free port in front of `backend`, connecting within 5 s, a client timeout of 30 s
    /// and `timeout server` as given; `options` added to its defaults.
    fn haproxy(backend: SocketAddr, timeout_server: &str, options: &str) -> Proxy {
        let addr = free_addr();
        let dir = temp_dir(&format!("haproxy-{}", addr.port()));
        let config = [
            "defaults".to_string(),
            "    mode http".into(),
            "    timeout connect 5s".into(),
            "    timeout client 30s".into(),
            format!("    timeout server {timeout_server}"),
            format!("    {options}"),
            "frontend front".into(),
            format!("    bind {addr}"),
            "    default_backend back".into(),
            "backend back".into(),
            format!("    server ssebench {backend}\n"),
        ]
        .join("\n");
        let conf = dir.join("haproxy.cfg");
        std::fs::write(&conf, config).unwrap();
        let mut command = Command::new(installed("haproxy"));
        command.arg("-f").arg(&conf).arg("-db");
        Proxy::start(command, addr, dir, None)
    }

    /// Runs `command` and waits until `addr` accepts connections.
    fn start(mut command: Command, addr: SocketAddr, dir: PathBuf, error_log: Option<PathBuf>) -> Proxy {
        let mut proxy = Proxy { daemon: Daemon::spawn(&mut command, dir), addr, error_log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = proxy.daemon.child.try_wait() {
                panic!("{command:?} exited ({status}): {}", proxy.logs());
            }
            assert!(Instant::now() < deadline, "{command:?} not listening in 10 s: {}", proxy.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// What the proxy wrote: its error log, if it has one, and its standard output and error.
    fn logs(&self) -> String {
        let error_log = self.error_log.as_ref().and_then(|path| std::fs::read_to_string(path).ok());
        format!("{}{}", error_log.unwrap_or_default(), self.daemon.output())
    }

    fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }
}

/// The backend of the delivery cases: 200 events of 100 bytes, 10 ms apart (a 2 s stream), plus `extra`.
fn two_second_streams(extra: &[&str]) -> ssebench::server::ServerHandle {
    let mut args = vec!["--events", "200", "--interval", "10ms", "--size", "100"];
    args.extend_from_slice(extra);
    serve_args(&args)
}

/// One stream read by a plain client (with `extra` request headers) and, at the same time, one by `ssebench run
/// --send-time stamp` with `run_flags`.
fn observe(proxy: &Proxy, extra: &'static str, run_flags: &[&str]) -> (RawReads, Report) {
    let addr = proxy.addr;
    let raw = std::thread::spawn(move || RawReads::of(addr, &get_request(extra), Duration::from_secs(10)));
    let url = proxy.url();
    let mut args = vec![url.as_str(), "-c", "1", "-n", "1", "--send-time", "stamp"];
    args.extend_from_slice(run_flags);
    let report = run_args(&args);
    let raw = raw.join().unwrap();
    let latency = &report.figures.latency_us;
    eprintln!(
        "{}: raw: {}; run: {} events, first event at {} ms, longest gap {} ms, failures {:?}",
        proxy.url(),
        raw.summary(),
        report.figures.events.received,
        latency.first_event.max / 1000,
        latency.max_gap.max / 1000,
        report.figures.streams.failures.iter().filter(|(_, n)| **n > 0).collect::<Vec<_>>()
    );
    eprintln!("{}", report_lines(&report, &["Delivery", "          ", "Cuts"]));
    (raw, report)
}

/// The text report's lines that start with one of `prefixes`, as the user sees them.
fn report_lines(report: &Report, prefixes: &[&str]) -> String {
    let text = ssebench::report::render_text(report);
    // A continuation line is indented by exactly the width of a line's label (the latency table's head, by more).
    let kept = |l: &&str| prefixes.iter().any(|p| l.starts_with(p) && !l[p.len()..].starts_with(' '));
    text.lines().filter(kept).collect::<Vec<_>>().join("\n")
}

/// The delivery verdict `report` gave, with its evidence for a failure's message.
fn verdict(report: &Report) -> (&str, &str) {
    (report.figures.delivery.verdict.as_str(), report.figures.delivery.evidence.as_str())
}

/// Every one of the 200 events counted, in one completed stream.
fn assert_all_events(report: &Report, raw: &RawReads, proxy: &Proxy) {
    let streams = &report.figures.streams;
    assert_eq!(report.figures.events.received, 200, "{:?} {}; {}", streams.failures, raw.summary(), proxy.logs());
    assert_eq!((streams.completed, streams.failed), (1, 0), "{:?}", streams.failures);
}

/// nginx's gzip for event streams, however small.
const GZIP: &str = "gzip on; gzip_types text/event-stream; gzip_min_length 0;";

/// A 2 s stream from `serve --x-accel-buffering accel` through nginx with `location` added (where that is `GZIP`,
/// the clients ask for gzip), read by both clients; `run` must count every event, decoded.
fn through_nginx(accel: &str, location: &'static str) -> (RawReads, Report) {
    let server = two_second_streams(&["--x-accel-buffering", accel]);
    let proxy = Proxy::nginx(server.addr, 1024, location);
    let gzip = location == GZIP;
    let (raw, report) = match gzip {
        true => observe(&proxy, "Accept-Encoding: gzip\r\n", &["--compressed"]),
        false => observe(&proxy, "", &[]),
    };
    let gzipped = raw.head().contains("Content-Encoding: gzip");
    assert_eq!(gzipped, gzip, "{}", raw.head());
    assert_eq!(report.figures.streams.compressed.gzip, u64::from(gzip), "run decoded what came gzipped");
    assert_all_events(&report, &raw, &proxy);
    drop(proxy);
    server.stop();
    (raw, report)
}

/// Without `X-Accel-Buffering` nginx buffers the response, and gzip holds its output until the end: the whole 2 s
/// stream comes in a read or two at its end. `X-Accel-Buffering: no` makes nginx flush gzip at every event.
#[test]
fn nginx_gzip_holds_a_buffered_stream_to_its_end() {
    let (raw, report) = through_nginx("omit", GZIP);
    assert!(raw.reads.len() <= 3, "{}", raw.summary());
    assert!(raw.first_byte() >= Duration::from_millis(1500), "{}", raw.summary());
    let (held, evidence) = verdict(&report);
    assert_eq!(held, "buffered", "{evidence}");
    let d = &report.figures.delivery;
    assert_eq!(d.compressed_streams, 1);
    // Held for about the stream's length: events sent 1.5 s and more apart came in one read.
    assert!(d.send_spread_in_read_us.max >= 1_500_000, "{evidence}");
    let (raw, report) = through_nginx("no", GZIP);
    assert!(raw.reads.len() >= 100, "{}", raw.summary());
    assert!(raw.first_byte() < Duration::from_millis(500), "{}", raw.summary());
    assert_eq!(verdict(&report).0, "direct", "{}", verdict(&report).1);
    assert_eq!(report.figures.delivery.compressed_streams, 1, "compressed, though flushed at every event");
}

/// nginx's defaults (proxy buffering on, no gzip) pass each event on as it comes, with or without the header.
#[test]
fn nginx_default_proxying_passes_events_as_they_come() {
    for accel in ["no", "omit"] {
        let (raw, report) = through_nginx(accel, "");
        assert!(raw.reads.len() >= 100, "--x-accel-buffering {accel}: {}", raw.summary());
        assert!(raw.first_byte() < Duration::from_millis(500), "--x-accel-buffering {accel}: {}", raw.summary());
        // proxy_buffering (on by default) did not hold a chunked event stream: no wolf cried.
        assert_eq!(verdict(&report).0, "direct", "--x-accel-buffering {accel}: {}", verdict(&report).1);
    }
}

/// HAProxy in plain `mode http` coalesces a stream's events into far fewer reads; `option http-no-delay` sends each
/// on at once.
#[test]
fn haproxy_coalesces_events_unless_told_not_to_delay() {
    let server = two_second_streams(&[]);
    let proxy = Proxy::haproxy(server.addr, "30s", "");
    let (raw, report) = observe(&proxy, "", &[]);
    assert!(raw.reads.len() <= 50, "{}", raw.summary());
    assert_all_events(&report, &raw, &proxy);
    let (coalesced, evidence) = verdict(&report);
    assert!(matches!(coalesced, "coalesced" | "buffered"), "{coalesced}: {evidence}");
    // About 20 events per read, sent up to ~200 ms apart.
    assert!(report.figures.delivery.events_per_read >= 5.0, "{evidence}");
    assert!(report.figures.delivery.send_spread_in_read_us.p90 >= 50_000, "{evidence}");
    drop(proxy);

    let proxy = Proxy::haproxy(server.addr, "30s", "option http-no-delay");
    let (raw, report) = observe(&proxy, "", &[]);
    assert!(raw.reads.len() >= 100, "{}", raw.summary());
    assert_all_events(&report, &raw, &proxy);
    assert_eq!(verdict(&report).0, "direct", "{}", verdict(&report).1);
    drop(proxy);
    server.stop();
}

/// Endless streams that go silent for 3 s after every 20 events (0.2 s), with a heartbeat every 1 s or none, through
/// the proxy `start` puts in front of them with a 2 s read timeout; `ssebench run -c 5 -d 6s` reads them.
fn through_a_read_timeout(start: fn(SocketAddr) -> Proxy, heartbeat: bool) {
    let mut args = vec!["--events", "0", "--interval", "10ms", "--pause-every", "20", "--pause", "3s"];
    if heartbeat {
        args.extend(["--heartbeat", "1s"]);
    }
    let server = serve_args(&args);
    let proxy = start(server.addr);
    let report = run_args(&[&proxy.url(), "-c", "5", "-d", "6s"]);
    let streams = &report.figures.streams;
    let seen: Vec<(&String, &u64)> = streams.failures.iter().filter(|(_, n)| **n > 0).collect();
    eprintln!(
        "{}: started {}, completed {}, failed {}, interrupted {}, events {}, failures {seen:?}",
        proxy.url(),
        streams.started,
        streams.completed,
        streams.failed,
        streams.interrupted,
        report.figures.events.received,
    );
    eprintln!("{}", report_lines(&report, &["Cuts"]));
    let cuts = &report.figures.delivery.cuts;
    if heartbeat {
        // Heartbeats keep the timeout from firing: every stream lasts the run.
        assert_eq!(streams.failed, 0, "{seen:?}; {}", proxy.logs());
        assert_eq!((streams.started, streams.interrupted), (5, 5));
        assert!(cuts.is_empty(), "{cuts:?}");
    } else {
        // Every stream is cut in its first pause, 2.2 s in (the proxy closes mid-body: a premature EOF), so each of the
        // 5 users is cut at least once in 6 s and opens another stream.
        assert!(failures(&report, "premature_eof") >= 5, "{seen:?}; {}", proxy.logs());
        assert!(streams.started > 5, "{} streams for 5 users: none was cut", streams.started);
        // Named: cut at one age, after 2 s without an event.
        let cut = cuts.first().unwrap_or_else(|| panic!("no cut named; {seen:?}"));
        assert!(cut.idle && cut.count >= 5, "{cuts:?}");
        assert!((1.8..3.0).contains(&cut.age_s), "{cuts:?}");
    }
    drop(proxy);
    server.stop();
}

fn nginx_read_timeout_2s(backend: SocketAddr) -> Proxy {
    Proxy::nginx(backend, 1024, "proxy_read_timeout 2s;")
}

fn haproxy_server_timeout_2s(backend: SocketAddr) -> Proxy {
    Proxy::haproxy(backend, "2s", "")
}

#[test]
fn nginx_read_timeout_cuts_silent_streams() {
    through_a_read_timeout(nginx_read_timeout_2s, false);
}

#[test]
fn nginx_read_timeout_spares_streams_with_heartbeats() {
    through_a_read_timeout(nginx_read_timeout_2s, true);
}

#[test]
fn haproxy_server_timeout_cuts_silent_streams() {
    through_a_read_timeout(haproxy_server_timeout_2s, false);
}

#[test]
fn haproxy_server_timeout_spares_streams_with_heartbeats() {
    through_a_read_timeout(haproxy_server_timeout_2s, true);
}

/// 256 `worker_connections` hold about 127 proxied streams (a client's connection and its upstream's each): 100
/// fit, 400 do not, so the breakpoint is stage 2. nginx accepts a connection it has no room for and closes it at
/// once (its log: "worker_connections are not enough"), a premature EOF to the client. Users reconnect after 1 s as
/// browsers do: without a wait each would reconnect at once, some 24,000 times a second on two cores.
#[test]
fn nginx_out_of_worker_connections_is_the_breakpoint() {
    let server = serve_args(&["--events", "0", "--interval", "100ms"]);
    let proxy = Proxy::nginx(server.addr, 256, "");
    let report = run_args(&[&proxy.url(), "--stages", "100:5s,400:5s", "--reconnect", "--retry-default", "1s"]);
    let seen: Vec<(&String, &u64)> = report.figures.streams.failures.iter().filter(|(_, n)| **n > 0).collect();
    for stage in &report.stages {
        let streams = &stage.figures.streams;
        let (started, failed, interrupted) = (streams.started, streams.failed, streams.interrupted);
        eprintln!("stage {}: started {started}, failed {failed}, interrupted {interrupted}", stage.stage);
    }
    eprintln!("failures {seen:?}");
    let breakpoint = report.breakpoint.as_ref().unwrap_or_else(|| panic!("no breakpoint; failures {seen:?}"));
    eprintln!("breakpoint {breakpoint:?}");
    assert_eq!((breakpoint.stage, breakpoint.target_streams), (2, 400), "{breakpoint:?}");
    assert_eq!(report.stages[0].figures.streams.failed, 0, "{:?}", report.stages[0].figures.streams.failures);
    // Also seen: `reset` (a connection closed with the request unread) and `http_500` (no room for the upstream's).
    let stage_2 = &report.stages[1].figures.streams;
    assert!(stage_2.failures["premature_eof"] > 0, "{:?}", stage_2.failures);
    let log = proxy.logs();
    assert!(log.contains("worker_connections are not enough"), "{log}");
    drop(proxy);
    server.stop();
}
