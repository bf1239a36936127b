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
use std::time::{Duration, Instant};

use ssebench::config::RunConfig;
use ssebench::engine;
use ssebench::llm::chunk::scan;
use ssebench::outcome::StageOutcome;
use ssebench::recorder::Recorder;

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

/// `ssebench serve --addr 127.0.0.1:PORT -t 1 ARGS` as a process of its own, so none of its allocations are counted
/// here; with its port, once it listens.
fn server_process(args: &[&str]) -> (Server, u16) {
    let port = util::free_addr().port();
    let child = util::ssebench()
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "-t", "1"])
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    (Server(child), port)
}

/// Endless streams, an event of 100 bytes every 2 ms each: after the connects, only events flow.
const ENDLESS_EVENTS: [&str; 6] = ["--events", "0", "--interval", "2ms", "--size", "100"];

/// Each run holds 50 streams through three stages: `WARM_UP_MS` to connect and let buffers grow to their working
/// size, the counted window, and `TAIL_MS` more so the window closes while events still flow. Each stage has its
/// own recorder, so the window's events are counted, not estimated.
const WARM_UP_MS: u64 = 1000;
const WINDOW_MS: u64 = 1500;
const TAIL_MS: u64 = 500;

/// How far past each edge of the window its allocation count may reach: a worker swaps in a stage's recorder
/// shortly after the stage's scheduled start (timer wake-up), and the run's clock is known afterwards to within the
/// microseconds its return took. Counting a little more than the window can only overstate allocations per event.
const EDGE: Duration = Duration::from_millis(10);
/// How often the allocation count is sampled while a run goes on.
const SAMPLE_PERIOD: Duration = Duration::from_millis(2);
/// Room for 20 s of samples, allocated before the run, so sampling allocates nothing.
const MAX_SAMPLES: usize = 10_000;

/// `ssebench run -t 1 --stages (the three stages) ARGS`.
fn run_config(args: &[&str]) -> RunConfig {
    let stages = format!("50:{WARM_UP_MS}ms,50:{WINDOW_MS}ms,50:{TAIL_MS}ms");
    let head = ["ssebench", "run", "-t", "1", "--stages", &stages];
    let argv = head.iter().chain(args).copied();
    let ssebench::cli::Command::Run(cfg) = ssebench::cli::parse_from(argv).unwrap() else { panic!("not a run") };
    *cfg
}

/// What the window (the second stage) saw.
struct Window {
    /// Allocations by every thread of the process, from `EDGE` before the window to `EDGE` after it.
    allocations: u64,
    /// The window's own recorder: its events, each counted.
    stage: Recorder,
    /// The whole run's.
    run: Recorder,
    /// The IO driver the run used (`--driver auto` falls back to epoll where io_uring is not usable).
    driver: &'static str,
}

impl Window {
    fn describe(&self) -> String {
        let chunks = self.stage.llm.as_deref().map_or(String::new(), |l| format!(", {} chunks", l.output_chunks));
        let (allocations, events) = (self.allocations, self.stage.events);
        format!("{}: {allocations} allocations in the {WINDOW_MS} ms window, {events} events{chunks}", self.driver)
    }
}

/// Runs `cfg` (made by `run_config`) while sampling the process's allocation count every `SAMPLE_PERIOD`, calls
/// `inject` once halfway through the window, and counts the allocations across the window as the run's clock
/// placed it.
fn counted_window(cfg: RunConfig, inject: impl FnOnce()) -> Window {
    let mut samples: Vec<(Instant, u64)> = Vec::with_capacity(MAX_SAMPLES);
    let spawned = Instant::now();
    let run = std::thread::spawn(move || {
        let outcome = engine::run(&cfg, 0).unwrap();
        (outcome, Instant::now())
    });
    // The run's clock starts a little after the spawn, so this is within the window unless start-up took 750 ms.
    let inject_at = spawned + Duration::from_millis(WARM_UP_MS + WINDOW_MS / 2);
    let mut inject = Some(inject);
    while !run.is_finished() && samples.len() < MAX_SAMPLES {
        std::thread::sleep(SAMPLE_PERIOD);
        if let Some(inject) = inject.take_if(|_| Instant::now() >= inject_at) {
            inject();
        }
        samples.push((Instant::now(), ALLOCATIONS.load(Ordering::SeqCst)));
    }
    let (outcome, returned) = run.join().unwrap();
    // The run's clock started `elapsed` before it returned (less the microseconds the return took: covered by EDGE).
    let start = returned - outcome.elapsed;
    let [_, stage, _] = <[StageOutcome; 3]>::try_from(outcome.stages).expect("three stages ran");
    let (from, to) = (start + stage.window.start - EDGE, start + stage.window.end + EDGE);
    let before = samples.iter().rev().find(|(at, _)| *at <= from).expect("a sample before the window");
    let after = samples.iter().find(|(at, _)| *at >= to).expect("a sample after the window");
    Window { allocations: after.1 - before.1, stage: stage.recorder, run: outcome.recorder, driver: outcome.driver }
}

/// The counter sees allocations made in the window, on any thread: without this, the zeros below could mean a
/// counter or a window that misses them.
#[test]
fn the_window_counts_allocations_made_in_it() {
    const BOXES: u64 = 1000;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_server, port) = server_process(&ENDLESS_EVENTS);
    let cfg = run_config(&[&format!("http://127.0.0.1:{port}/")]);
    let window = counted_window(cfg, || {
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..BOXES {
                    drop(black_box(Box::new(i)));
                }
            });
        });
    });
    eprintln!("control: {}", window.describe());
    assert_eq!((window.run.streams_failed, window.run.streams_interrupted), (0, 50));
    assert!(window.stage.events > 0, "events flowed in the window");
    assert!(window.allocations >= BOXES, "{} allocations counted, {BOXES} made", window.allocations);
}

/// Plain HTTP on each driver: nothing allocates per event (with `extra` run flags).
fn no_allocation_while_events_flow(driver: &str, extra: &[&str]) {
    let (_server, port) = server_process(&[&ENDLESS_EVENTS[..], &["--driver", driver]].concat());
    let url = format!("http://127.0.0.1:{port}/");
    let cfg = run_config(&[&[url.as_str(), "--driver", driver][..], extra].concat());
    let window = counted_window(cfg, || ());
    let (rec, stage) = (&window.run, &window.stage);
    eprintln!("--driver {driver} {extra:?}: {}", window.describe());
    if extra.contains(&"--send-time") {
        let lags = stage.histograms.delivery_lag_us.len();
        assert_eq!((lags, stage.send_time_missing), (stage.events, 0), "every event's lag recorded");
    }
    assert_eq!(rec.streams_failed, 0, "{driver}");
    assert_eq!(rec.streams_interrupted, 50, "{driver}: every stream stayed open");
    // 50 streams x 500 events/s x 3 s, less what a loaded machine drops; the window is half of the run.
    assert!(rec.events > 20_000, "{driver}: only {} events", rec.events);
    assert!(stage.events > 10_000, "{driver}: only {} events in the window", stage.events);
    assert_eq!(window.allocations, 0, "{driver}: allocations while {} events flowed", stage.events);
}

#[test]
fn no_allocation_per_event_in_steady_state() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    no_allocation_while_events_flow("auto", &[]);
    no_allocation_while_events_flow("epoll", &[]);
}

/// `--send-time`: each event's send time is read from its data and its lag recorded, without allocating.
#[test]
fn no_allocation_per_event_with_send_times() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    no_allocation_while_events_flow("auto", &["--send-time", "stamp"]);
}

/// `--openai`: every event is a JSON chunk scanned for tokens. Answers of a million tokens at 500 tokens/s keep the
/// streams going through the window.
#[test]
fn no_allocation_per_chunk_in_llm_mode() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_server, port) = server_process(&["--openai", "--tokens-per-s", "500", "--output-tokens", "1000000"]);
    let url = format!("http://127.0.0.1:{port}/");
    // And each chunk's send time read through a JSON path (`created`, Unix seconds): the cursor allocates nothing.
    let args = [&url[..], "--openai", "chat", "--prompt-tokens", "50", "--send-time", "$.created"];
    let window = counted_window(run_config(&args), || ());
    let run_llm = window.run.llm.as_deref().expect("LLM figures");
    let chunks = window.stage.llm.as_deref().expect("the window's LLM figures").output_chunks;
    eprintln!("llm: {}", window.describe());
    assert_eq!((window.run.streams_failed, window.run.streams_interrupted), (0, 50));
    assert!(run_llm.output_chunks > 20_000, "only {} chunks", run_llm.output_chunks);
    assert!(chunks > 10_000, "only {chunks} chunks in the window");
    let lags = window.stage.histograms.delivery_lag_us.len();
    assert_eq!((lags, window.stage.send_time_missing), (window.stage.events, 0), "every chunk's lag recorded");
    assert_eq!(window.allocations, 0, "allocations while {chunks} chunks flowed");
}

/// `https://`: after the first answer a TLS 1.3 stream's records are opened in place in the core's read buffer
/// (`tls_records`), where rustls 0.23 decrypted each into a fresh `Vec` (1.006 allocations per event measured
/// before the handover). What may still allocate is a record split across two reads (its first part is kept until
/// the rest comes), which a server that writes one event per record rarely causes.
#[test]
fn tls_streams_do_not_allocate_per_event() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pki = util::pki();
    let (cert, key) = (pki.path("localhost.pem"), pki.path("localhost.key"));
    let (_server, port) = server_process(&[&ENDLESS_EVENTS[..], &["--tls-cert", &cert, "--tls-key", &key]].concat());
    let url = format!("https://localhost:{port}/");
    let window = counted_window(run_config(&[&url, "--cacert", &pki.path("ca.pem")]), || ());
    let (rec, events) = (&window.run, window.stage.events);
    eprintln!("tls: {}", window.describe());
    assert_eq!((rec.streams_failed, rec.streams_interrupted), (0, 50));
    assert!(rec.events > 20_000, "only {} events", rec.events);
    assert!(events > 10_000, "only {events} events in the window");
    assert!(window.allocations * 100 <= events, "{} allocations for {events} events", window.allocations);
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
