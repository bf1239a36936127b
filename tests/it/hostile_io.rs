//! Servers that misbehave at the socket: one that never reads a large request, one that answers before the request
//! is written, one that sends as fast as it can, one that talks on an idle kept-alive connection. Each runs the
//! `ssebench` binary (a hang must not hang the test: past its limit the child is killed and the test fails saying
//! so) on both drivers, and asserts counts and classes from its JSON report, with upper bounds on time only as "the
//! run ended within its deadline plus a wide margin".

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::{LOOPBACK, SSE_HEAD, SSE_HEAD_CLOSE, read_head, read_request, scripted_server, ssebench, temp_dir};

const DRIVERS: [&str; 2] = ["epoll", "io_uring"];
/// A run still going this long after its start hangs: its deadline or timeout is a second or two.
const HANG: Duration = Duration::from_secs(15);

/// How one `ssebench run` ended: how long it took, its exit code, what it printed, and its JSON report.
struct Ran {
    elapsed: Duration,
    code: Option<i32>,
    stdout: String,
    json: serde_json::Value,
}

impl Ran {
    fn at(&self, path: &str) -> &serde_json::Value {
        path.split('.').fold(&self.json, |v, key| &v[key])
    }

    fn count(&self, path: &str) -> u64 {
        self.at(path).as_u64().unwrap_or_else(|| panic!("{path} is {:?}: {}", self.at(path), self.stdout))
    }

    fn failures(&self, class: &str) -> u64 {
        self.count(&format!("streams.failures.{class}"))
    }
}

/// `ssebench run http://ADDR/ -t 1 --driver DRIVER ARGS --json FILE`. With `interrupt_after`, a SIGINT that long
/// after the start. A child still running after `HANG` is killed, and the test fails: the run hung.
fn run_bin(addr: SocketAddr, driver: &str, args: &[&str], interrupt_after: Option<Duration>) -> Ran {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let json_path = temp_dir("hostile-io").join(format!("run-{}.json", RUNS.fetch_add(1, Ordering::Relaxed)));
    let url = format!("http://{addr}/");
    let mut child = ssebench()
        .args(["run", &url, "-t", "1", "--driver", driver])
        .args(args)
        .arg("--json")
        .arg(&json_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut interrupt = interrupt_after;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if interrupt.is_some_and(|after| started.elapsed() >= after) {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            interrupt = None;
        }
        if started.elapsed() > HANG {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{driver} {args:?}: still running after {HANG:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let json = std::fs::read(&json_path).map_or(serde_json::Value::Null, |b| serde_json::from_slice(&b).unwrap());
    Ran { elapsed, code: status.code(), stdout, json }
}

/// `--body @FILE` with a 16 MiB file: far more than the socket buffers of both ends hold.
fn large_body_arg() -> String {
    static BODY: OnceLock<PathBuf> = OnceLock::new();
    let path = BODY.get_or_init(|| {
        let path = temp_dir("hostile-io-body").join("body.bin");
        std::fs::write(&path, vec![b'x'; 16 << 20]).unwrap();
        path
    });
    format!("@{}", path.to_str().unwrap())
}

/// A server that accepts every connection, hands it to `serve` on a thread of its own, and keeps it open after
/// `serve` returns (closing it is not what these servers do).
fn server(serve: fn(&mut TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind(LOOPBACK).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                serve(&mut conn);
                std::thread::sleep(Duration::from_secs(60));
            });
        }
    });
    addr
}

/// Accepts, then neither reads nor answers.
fn silent(_: &mut TcpStream) {}

/// Reads the request at up to 256 KiB per 50 ms, and never answers: the write moves every few hundred ms (as the
/// client's send buffer drains by a third), and the large body takes seconds.
fn slow_reader(conn: &mut TcpStream) {
    let mut buf = vec![0; 256 << 10];
    while conn.read(&mut buf).is_ok_and(|n| n > 0) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the request head, answers 413 at once, and stops reading (the body stays unread).
fn early_413(conn: &mut TcpStream) {
    if read_head(conn).is_some() {
        let _ = conn.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
    }
}

/// Reads the request head, then sends small events as fast as the socket takes them, until the client goes.
fn flood(conn: &mut TcpStream) {
    if read_head(conn).is_none() || conn.write_all(SSE_HEAD).is_err() {
        return;
    }
    let events = b"data: x\n\n".repeat(7282);
    while conn.write_all(&events).is_ok() {}
}

/// Item 1: a request that cannot be written (the server never reads it) is bounded by --byte-idle-timeout.
#[test]
fn a_request_write_that_makes_no_progress_is_byte_idle() {
    let addr = server(silent);
    let body = large_body_arg();
    for driver in DRIVERS {
        let args = ["-c", "1", "-n", "1", "--body", &body, "--byte-idle-timeout", "1s"];
        let ran = run_bin(addr, driver, &args, None);
        assert_eq!((ran.failures("byte_idle_timeout"), ran.count("streams.completed")), (1, 0), "{driver}");
        assert!(ran.elapsed >= Duration::from_secs(1), "{driver}: ended after {:?}", ran.elapsed);
        assert!(ran.elapsed < Duration::from_secs(4), "{driver}: ended after {:?}", ran.elapsed);
    }
}

/// Item 1: --header-timeout runs from the request's start, writing included; a write that keeps moving is not idle.
#[test]
fn header_timeout_counts_from_the_request_start_while_writing() {
    for (serve, byte_idle) in [(silent as fn(&mut TcpStream), None), (slow_reader, Some("1s"))] {
        let addr = server(serve);
        let body = large_body_arg();
        for driver in DRIVERS {
            let mut args = vec!["-c", "1", "-n", "1", "--body", &body, "--header-timeout", "1500ms"];
            args.extend(byte_idle.iter().flat_map(|t| ["--byte-idle-timeout", t]));
            let ran = run_bin(addr, driver, &args, None);
            assert_eq!(ran.failures("header_timeout"), 1, "{driver} {args:?}: {}", ran.stdout);
            assert_eq!((ran.count("streams.failed"), ran.count("streams.completed")), (1, 0), "{driver} {args:?}");
            assert!(ran.elapsed >= Duration::from_millis(1500), "{driver}: ended after {:?}", ran.elapsed);
            assert!(ran.elapsed < Duration::from_millis(4500), "{driver}: ended after {:?}", ran.elapsed);
        }
    }
}

/// Item 1: -d and Ctrl-C end a stream stuck writing its request: interrupted, neither completed nor failed.
#[test]
fn the_run_end_and_ctrl_c_cut_a_request_write() {
    let addr = server(silent);
    let body = large_body_arg();
    for driver in DRIVERS {
        let by_deadline = run_bin(addr, driver, &["-c", "2", "-d", "1s", "--body", &body], None);
        let by_signal = run_bin(addr, driver, &["-c", "2", "--body", &body], Some(Duration::from_millis(700)));
        for (ran, code) in [(by_deadline, 0), (by_signal, 130)] {
            assert_eq!(ran.code, Some(code), "{driver}: {}", ran.stdout);
            let streams = ["started", "interrupted", "completed", "failed"].map(|k| ran.count(&format!("streams.{k}")));
            assert_eq!(streams, [2, 2, 0, 0], "{driver}: {}", ran.stdout);
            assert!(ran.elapsed < Duration::from_secs(4), "{driver}: ended after {:?}", ran.elapsed);
        }
    }
}

/// Item 2: a response that comes while the request is still being written (a 413 before the body is read) ends the
/// write and classifies the stream.
#[test]
fn an_early_response_ends_the_request_write() {
    let addr = server(early_413);
    let body = large_body_arg();
    for driver in DRIVERS {
        let ran = run_bin(addr, driver, &["-c", "1", "-n", "2", "--body", &body], None);
        assert_eq!(ran.code, Some(0), "{driver}: {}", ran.stdout);
        assert_eq!((ran.failures("http_413"), ran.count("streams.failed")), (2, 2), "{driver}: {}", ran.stdout);
        assert_eq!(ran.count("latency_us.headers.count"), 2, "{driver}: both heads timed");
        assert_eq!(ran.count("latency_us.connect.count"), 2, "{driver}: a cut request's connection is not reused");
        assert!(ran.elapsed < Duration::from_secs(4), "{driver}: ended after {:?}", ran.elapsed);
    }
}

/// Item 3: four streams flooded with small events: -d still ends the run, on time, with a report.
#[test]
fn a_flood_of_events_does_not_hold_the_run_past_its_duration() {
    let addr = server(flood);
    for driver in DRIVERS {
        let ran = run_bin(addr, driver, &["-c", "4", "-d", "1500ms"], None);
        assert_eq!(ran.code, Some(0), "{driver}: {}", ran.stdout);
        assert!(ran.stdout.contains("Streams   4 started"), "{driver}: {}", ran.stdout);
        assert_eq!((ran.count("streams.interrupted"), ran.count("streams.failed")), (4, 0), "{driver}");
        assert!(ran.count("events.received") > 10_000, "{driver}: {}", ran.stdout);
        assert!(ran.elapsed >= Duration::from_millis(1500), "{driver}: ended after {:?}", ran.elapsed);
        assert!(ran.elapsed < Duration::from_secs(4), "{driver}: ended after {:?}", ran.elapsed);
    }
}

/// Item 3: the same flood, stopped by Ctrl-C: the report comes at once.
#[test]
fn a_flood_of_events_does_not_hold_back_ctrl_c() {
    let addr = server(flood);
    for driver in DRIVERS {
        let interrupt = Duration::from_secs(1);
        let ran = run_bin(addr, driver, &["-c", "4", "-d", "60s"], Some(interrupt));
        assert_eq!(ran.code, Some(130), "{driver}: {}", ran.stdout);
        assert!(ran.stdout.contains("Stopped   by Ctrl-C"), "{driver}: {}", ran.stdout);
        assert_eq!((ran.count("streams.interrupted"), ran.count("streams.failed")), (4, 0), "{driver}");
        assert!(ran.elapsed < interrupt + Duration::from_secs(2), "{driver}: ended after {:?}", ran.elapsed);
    }
}

/// One response of three events, framed and kept alive.
const THREE_EVENTS: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 27\r\n\r\n\
data: a\n\ndata: b\n\ndata: c\n\n";
/// A response nobody asked for: five events.
const UNASKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 45\r\n\r\n\
data: x\n\ndata: x\n\ndata: x\n\ndata: x\n\ndata: x\n\n";

/// Item 4: after each answer the server sends a second response nobody asked for (20 ms later, while the client
/// waits its --retry-default before the next stream). That connection is stale: the client must not take those
/// bytes as its next answer, but close it, count it and connect anew.
#[test]
fn bytes_on_an_idle_kept_alive_connection_make_it_stale() {
    for driver in DRIVERS {
        let (addr, requests) = scripted_server(|conn, _| {
            loop {
                if conn.write_all(THREE_EVENTS).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
                if conn.write_all(UNASKED).is_err() || read_request(conn).is_none() {
                    return;
                }
            }
        });
        let args = ["-c", "1", "-n", "3", "--reconnect", "--retry-default", "300ms"];
        let ran = run_bin(addr, driver, &args, None);
        assert_eq!(ran.code, Some(0), "{driver}: {}", ran.stdout);
        assert_eq!((ran.count("streams.completed"), ran.count("events.received")), (3, 9), "{driver}: {}", ran.stdout);
        assert_eq!(ran.count("streams.stale_keepalive"), 2, "{driver}: {}", ran.stdout);
        assert!(ran.stdout.contains("Stale     2 kept-alive"), "{driver}: {}", ran.stdout);
        assert_eq!(requests.try_iter().count(), 3, "{driver}: one connection per request");
    }
}

/// Reads the request head, sends the head, and a moment later the last event and the end of the connection together.
fn event_then_close(conn: &mut TcpStream) {
    if read_head(conn).is_none() || conn.write_all(SSE_HEAD_CLOSE).is_err() {
        return;
    }
    // The client has read the head by now and waits for more, after a read that found the socket empty.
    std::thread::sleep(Duration::from_millis(50));
    let _ = conn.write_all(b"data: last\n\n");
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

/// The last bytes and the close come together, after the client's wait began: a read returns the bytes and leaves
/// the end for the next, so the wait after it must still see the close (on epoll, the close's readiness is never
/// taken for stale, vendor/monoio/PATCH.md). Every stream ends by the server's close, none by a hang.
#[test]
fn the_last_event_and_the_close_together_end_the_stream() {
    let addr = server(event_then_close);
    for driver in DRIVERS {
        let ran = run_bin(addr, driver, &["-c", "2", "-n", "6", "--idle-timeout", "10s"], None);
        assert_eq!(ran.count("streams.started"), 6, "{driver}: {}", ran.stdout);
        assert_eq!(ran.count("events.received"), 6, "{driver}: {}", ran.stdout);
        assert_eq!(ran.count("streams.completed"), 6, "{driver}: {}", ran.stdout);
    }
}
