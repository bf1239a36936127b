//! No allocation per event: one counting global allocator watches a running generator, and the LLM chunk scanner.
//!
//! Its own test binary, because a global allocator is per binary; the helpers are the integration tests'
//! (`it/util.rs`). The servers run as separate processes (the `ssebench` binary), so every allocation counted
//! while a generator runs is the generator's.

#[path = "it/util.rs"]
#[allow(dead_code)] // the integration tests' helpers; this binary needs only a few
mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ssebench::config::{DriverChoice, RunConfig, Target};
use ssebench::engine;
use ssebench::llm::chunk::scan;

struct Counting;

/// Allocations (and reallocations) by every thread of the process.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Allocations by this thread alone, so a check of one function cannot see the harness's other threads.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    // A thread being torn down has no thread-locals left: it is counted in the process's total only.
    let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`; counting has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while running `f`.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = THREAD_ALLOCATIONS.get();
    f();
    THREAD_ALLOCATIONS.get() - before
}

/// The count is process-wide: tests take turns, so one's set-up never lands in another's window.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Kills the server process when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(util::LOOPBACK).unwrap().local_addr().unwrap().port()
}

/// Streams that never end, an event every 2 ms each: after the connects, only events flow.
fn allocations_while_events_flow(driver: DriverChoice, driver_name: &str) {
    let port = free_port();
    let _server = Server(
        util::ssebench()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--events", "0", "--interval", "2ms"])
            .args(["--size", "100", "-t", "1", "--driver", driver_name])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let cfg = RunConfig {
        connections: 50,
        duration: Some(Duration::from_millis(3000)),
        threads: 1,
        driver,
        ..RunConfig::new(vec![Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap()])
    };
    let (outcome, allocations) = allocations_in_window(cfg);
    let rec = &outcome.recorder;
    assert_eq!(rec.streams_failed, 0, "{driver_name}");
    assert_eq!(rec.streams_interrupted, 50, "{driver_name}: every stream stayed open");
    // 50 streams x 500 events/s x 3 s, less what a loaded machine drops.
    assert!(rec.events > 20_000, "{driver_name}: only {} events", rec.events);
    let window_events = rec.events / 2;
    eprintln!("{driver_name}: {allocations} allocations in the 1.5 s window, ~{window_events} events");
    assert_eq!(allocations, 0, "{driver_name}: allocations while ~{window_events} events flowed");
}

/// Runs `cfg` (3 s long) and counts the allocations from 1 s in, once connections are made and buffers have grown
/// to their working size, for 1.5 s.
fn allocations_in_window(cfg: RunConfig) -> (engine::RunOutcome, u64) {
    let run = std::thread::spawn(move || engine::run(&cfg, 0).unwrap());
    std::thread::sleep(Duration::from_millis(1000));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (run.join().unwrap(), after - before)
}

/// `--openai`: every event is a JSON chunk scanned for tokens. Answers of a million tokens at 500 tokens/s keep the
/// streams going through the window.
#[test]
fn no_allocation_per_chunk_in_llm_mode() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let _server = Server(
        util::ssebench()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--openai", "--tokens-per-s", "500"])
            .args(["--output-tokens", "1000000", "-t", "1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("http://127.0.0.1:{port}/");
    let argv =
        ["ssebench", "run", &url, "--openai", "chat", "--prompt-tokens", "50", "-c", "50", "-d", "3s", "-t", "1"];
    let ssebench::cli::Command::Run(cfg) = ssebench::cli::parse_from(argv).unwrap() else { panic!("not a run") };
    let (outcome, allocations) = allocations_in_window(*cfg);
    let llm = outcome.recorder.llm.as_deref().expect("LLM figures");
    assert_eq!((outcome.recorder.streams_failed, outcome.recorder.streams_interrupted), (0, 50));
    assert!(llm.output_chunks > 20_000, "only {} chunks", llm.output_chunks);
    eprintln!("llm: {allocations} allocations in the 1.5 s window, ~{} chunks", llm.output_chunks / 2);
    assert_eq!(allocations, 0, "allocations while ~{} chunks flowed", llm.output_chunks / 2);
}

#[test]
fn no_allocation_per_event_in_steady_state() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    allocations_while_events_flow(DriverChoice::Auto, "auto");
    allocations_while_events_flow(DriverChoice::Epoll, "epoll");
}

/// `https://`: rustls 0.23 decrypts each received record into a fresh `Vec` (both its buffered and unbuffered
/// APIs), so a TLS stream allocates once per record, and the server writes one event per record. This pins that
/// figure, so anything of ours that allocates per event on the TLS path still shows.
#[test]
fn tls_allocates_only_rustls_record_per_event() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pki = util::pki();
    let port = free_port();
    let _server = Server(
        util::ssebench()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--events", "0", "--interval", "2ms"])
            .args(["--size", "100", "-t", "1"])
            .args(["--tls-cert", &pki.path("localhost.pem"), "--tls-key", &pki.path("localhost.key")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("https://localhost:{port}/");
    let ca = pki.path("ca.pem");
    let argv = ["ssebench", "run", &url, "--cacert", &ca, "-c", "50", "-d", "3s", "-t", "1"];
    let ssebench::cli::Command::Run(cfg) = ssebench::cli::parse_from(argv).unwrap() else { panic!("not a run") };
    let (outcome, allocations) = allocations_in_window(*cfg);
    let rec = &outcome.recorder;
    assert_eq!((rec.streams_failed, rec.streams_interrupted), (0, 50));
    assert!(rec.events > 20_000, "only {} events", rec.events);
    let window_events = rec.events / 2;
    eprintln!("tls: {allocations} allocations in the 1.5 s window, ~{window_events} events");
    // One per record, with slack for the window's edges and a record that carries two events' bytes.
    assert!(allocations <= window_events * 11 / 10, "{allocations} allocations for ~{window_events} events");
}

/// Scanning every fixture's chunks (and a few odd ones) a thousand times allocates nothing.
#[test]
fn scan_does_not_allocate() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut payloads: Vec<Vec<u8>> = util::fixture_names().iter().flat_map(|n| util::payloads(n)).collect();
    assert!(payloads.len() > 100, "fixtures present");
    payloads.push(br#"{"choices":[{"delta":{"content":"unterminated"#.to_vec());
    payloads.push(br#"{"choices":[{"delta":{"\u0063ontent":"\ud83d\ude00 caf\u00e9 \ud800"}}]}"#.to_vec());
    payloads.push("[".repeat(1000).into_bytes());

    // The counter must see allocations at all, or a zero below would prove nothing.
    assert!(allocations_during(|| drop(black_box(vec![0u8; 64]))) > 0);

    let seen = allocations_during(|| {
        for _ in 0..1000 {
            for payload in &payloads {
                let _ = black_box(scan(black_box(payload)));
            }
        }
    });
    assert_eq!(seen, 0);
}
