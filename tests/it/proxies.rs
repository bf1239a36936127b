//! ssebench behind real nginx and HAProxy (the distribution's packages, which `.ci/run` installs), each started in
//! the foreground with a generated configuration in a directory of its own: what each does to an event stream on
//! the wire (how many reads a 2 s stream arrives in, and when its first byte comes, read by a plain client) and what
//! `ssebench run` makes of it (every event counted through gzip and coalescing; streams cut by a read timeout
//! during a pause, or kept alive by heartbeats; the stage where nginx runs out of `worker_connections`).
//!
//! A missing proxy fails the test with what to run, never skips it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ssebench::report::Report;

use crate::util::{RawReads, failures, free_addr, get_request, run_args, serve_args, temp_dir};

/// A proxy on a loopback port, running in the foreground as this process's child; killed (and its directory
/// removed) when dropped.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `name` on PATH or in the sbin directories Debian installs proxies to (a non-root PATH lacks them), or a failure
/// saying how to get it: a missing proxy must not pass as a skipped test.
fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path).chain(sbin).map(|dir| dir.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "{name} is not installed: run .ci/run (it installs the distribution's package), or `apt-get install {name}`"
        )
    })
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
        let mut command = Command::new(binary("nginx"));
        command.arg("-p").arg(&dir).arg("-e").arg(dir.join("error.log")).arg("-c").arg(&conf);
        command.args(["-g", "daemon off;"]);
        Proxy::start(command, addr, dir.clone(), dir.join("error.log"))
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
        let mut command = Command::new(binary("haproxy"));
        command.arg("-f").arg(&conf).arg("-db");
        Proxy::start(command, addr, dir.clone(), dir.join("haproxy.log"))
    }

    /// Runs `command` with its output in `log` (created here if the proxy does not write it itself) and waits
    /// until `addr` accepts connections.
    fn start(mut command: Command, addr: SocketAddr, dir: PathBuf, log: PathBuf) -> Proxy {
        let output = std::fs::File::create(dir.join("output.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let mut proxy = Proxy { child, addr, dir, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("{command:?} exited ({status}): {}", proxy.logs());
            }
            assert!(Instant::now() < deadline, "{command:?} not listening in 10 s: {}", proxy.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// What the proxy wrote: its own log and its standard output and error.
    fn logs(&self) -> String {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        format!("{}{}", read(self.log.clone()), read(self.dir.join("output.log")))
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

/// One stream read by a plain client (with `extra` request headers) and, at the same time, one by `ssebench run`
/// with `run_flags`.
fn observe(proxy: &Proxy, extra: &'static str, run_flags: &[&str]) -> (RawReads, Report) {
    let addr = proxy.addr;
    let raw = std::thread::spawn(move || RawReads::of(addr, &get_request(extra), Duration::from_secs(10)));
    let url = proxy.url();
    let mut args = vec![url.as_str(), "-c", "1", "-n", "1"];
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
    (raw, report)
}

/// Every one of the 200 events counted, in one completed stream.
fn assert_all_events(report: &Report, raw: &RawReads, proxy: &Proxy) {
    let streams = &report.figures.streams;
    assert_eq!(report.figures.events.received, 200, "{:?} {}; {}", streams.failures, raw.summary(), proxy.logs());
    assert_eq!((streams.completed, streams.failed), (1, 0), "{:?}", streams.failures);
}

/// Without `X-Accel-Buffering` nginx buffers the response, and gzip holds its output until the end: the whole 2 s
/// stream comes in a read or two at its end. `X-Accel-Buffering: no` makes nginx flush gzip at every event.
#[test]
fn nginx_gzip_holds_a_buffered_stream_to_its_end() {
    let gzip = "gzip on; gzip_types text/event-stream; gzip_min_length 0;";
    let server = two_second_streams(&["--x-accel-buffering", "omit"]);
    let proxy = Proxy::nginx(server.addr, 1024, gzip);
    let (raw, report) = observe(&proxy, "Accept-Encoding: gzip\r\n", &["--compressed"]);
    assert!(raw.head().contains("Content-Encoding: gzip"), "{}", raw.head());
    assert_eq!(report.figures.streams.compressed.gzip, 1, "run decoded a gzip stream");
    assert!(raw.reads.len() <= 3, "{}", raw.summary());
    assert!(raw.first_byte() >= Duration::from_millis(1500), "{}", raw.summary());
    assert_all_events(&report, &raw, &proxy);
    drop(proxy);
    server.stop();

    let server = two_second_streams(&["--x-accel-buffering", "no"]);
    let proxy = Proxy::nginx(server.addr, 1024, gzip);
    let (raw, report) = observe(&proxy, "Accept-Encoding: gzip\r\n", &["--compressed"]);
    assert!(raw.head().contains("Content-Encoding: gzip"), "{}", raw.head());
    assert!(raw.reads.len() >= 100, "{}", raw.summary());
    assert!(raw.first_byte() < Duration::from_millis(500), "{}", raw.summary());
    assert_all_events(&report, &raw, &proxy);
    drop(proxy);
    server.stop();
}

/// nginx's defaults (proxy buffering on, no gzip) pass each event on as it comes, with or without the header.
#[test]
fn nginx_default_proxying_passes_events_as_they_come() {
    for accel in ["no", "omit"] {
        let server = two_second_streams(&["--x-accel-buffering", accel]);
        let proxy = Proxy::nginx(server.addr, 1024, "");
        let (raw, report) = observe(&proxy, "", &[]);
        assert!(raw.reads.len() >= 100, "--x-accel-buffering {accel}: {}", raw.summary());
        assert!(raw.first_byte() < Duration::from_millis(500), "--x-accel-buffering {accel}: {}", raw.summary());
        assert_all_events(&report, &raw, &proxy);
        drop(proxy);
        server.stop();
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
    drop(proxy);

    let proxy = Proxy::haproxy(server.addr, "30s", "option http-no-delay");
    let (raw, report) = observe(&proxy, "", &[]);
    assert!(raw.reads.len() >= 100, "{}", raw.summary());
    assert_all_events(&report, &raw, &proxy);
    drop(proxy);
    server.stop();
}

/// Endless streams that go silent for 3 s after every 20 events (0.2 s), optionally with a heartbeat every 1 s.
fn pausing_streams(heartbeat: bool) -> ssebench::server::ServerHandle {
    let mut args = vec!["--events", "0", "--interval", "10ms", "--pause-every", "20", "--pause", "3s"];
    if heartbeat {
        args.extend(["--heartbeat", "1s"]);
    }
    serve_args(&args)
}

/// `ssebench run -c 5 -d 6s` through `proxy`.
fn six_seconds_of_five(proxy: &Proxy) -> Report {
    let report = run_args(&[&proxy.url(), "-c", "5", "-d", "6s"]);
    let streams = &report.figures.streams;
    eprintln!(
        "{}: started {}, completed {}, failed {}, interrupted {}, events {}, failures {:?}",
        proxy.url(),
        streams.started,
        streams.completed,
        streams.failed,
        streams.interrupted,
        report.figures.events.received,
        streams.failures.iter().filter(|(_, n)| **n > 0).collect::<Vec<_>>()
    );
    report
}

/// A 2 s read timeout cuts every stream in its first 3 s pause, 2.2 s in (the proxy closes mid-body: a premature
/// EOF), so each of the 5 users is cut at least once in 6 s and opens another stream.
fn assert_cut_in_pauses(report: &Report, proxy: &Proxy) {
    let streams = &report.figures.streams;
    assert!(failures(report, "premature_eof") >= 5, "{:?}; {}", streams.failures, proxy.logs());
    assert!(streams.started > 5, "{} streams for 5 users: none was cut", streams.started);
}

/// Heartbeats every 1 s keep the 2 s read timeout from firing: every stream lasts the run.
fn assert_kept_alive(report: &Report, proxy: &Proxy) {
    let streams = &report.figures.streams;
    assert_eq!(streams.failed, 0, "{:?}; {}", streams.failures, proxy.logs());
    assert_eq!((streams.started, streams.interrupted), (5, 5));
}

#[test]
fn nginx_read_timeout_cuts_silent_streams() {
    let server = pausing_streams(false);
    let proxy = Proxy::nginx(server.addr, 1024, "proxy_read_timeout 2s;");
    assert_cut_in_pauses(&six_seconds_of_five(&proxy), &proxy);
    drop(proxy);
    server.stop();
}

#[test]
fn nginx_read_timeout_spares_streams_with_heartbeats() {
    let server = pausing_streams(true);
    let proxy = Proxy::nginx(server.addr, 1024, "proxy_read_timeout 2s;");
    assert_kept_alive(&six_seconds_of_five(&proxy), &proxy);
    drop(proxy);
    server.stop();
}

#[test]
fn haproxy_server_timeout_cuts_silent_streams() {
    let server = pausing_streams(false);
    let proxy = Proxy::haproxy(server.addr, "2s", "");
    assert_cut_in_pauses(&six_seconds_of_five(&proxy), &proxy);
    drop(proxy);
    server.stop();
}

#[test]
fn haproxy_server_timeout_spares_streams_with_heartbeats() {
    let server = pausing_streams(true);
    let proxy = Proxy::haproxy(server.addr, "2s", "");
    assert_kept_alive(&six_seconds_of_five(&proxy), &proxy);
    drop(proxy);
    server.stop();
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
