//! Soak benchmark: every stream cut and resumed, again and again, for minutes; nothing lost, nothing repeated, and
//! memory flat.
//!
//! `cargo bench --bench soak` starts `ssebench serve --events 0 --interval 1s --disconnect-after 50` (each stream is
//! cut without its last chunk after 50 events, as a proxy or a crash would) and, as a separate process,
//! `ssebench run -c N -d T --reconnect --verify-seq` against it. Every reconnect sends `Last-Event-ID` and the
//! server resumes after it, so a reconnect that did not resume shows as duplicates, one that skipped as lost.
//! It samples the generator's VmRSS every second and compares the mean of the first minute after the ramp with the
//! last minute's. It prints the figures and fails (exit code 101) unless 0 events were lost, 0 duplicated, the
//! streams reconnected, and the last minute's RSS is within 5% of the first's.
//!
//! Knobs (environment): `SOAK_STREAMS` (default 10000), `SOAK_SECONDS` (default 600), `SOAK_CONNECT_RATE`
//! (default 2000), `SOAK_DRIVER` (`auto`, `io_uring`, `epoll`), `SOAK_WINDOW_S` (the compared windows, default 60).
//! Under `cargo test` (no `--bench` argument) it only says how to run it: it takes ten minutes.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{env_or, finish, rss_kib};

/// Each stream is cut after this many events; at one a second, every user reconnects about once a minute.
const DISCONNECT_AFTER: &str = "50";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak: skipped under cargo test; run `cargo bench --bench soak` (takes 10 minutes)");
        return;
    }
    let streams: u64 = env_or("SOAK_STREAMS", "10000").parse().expect("SOAK_STREAMS: a number");
    let seconds: u64 = env_or("SOAK_SECONDS", "600").parse().expect("SOAK_SECONDS: seconds");
    let rate: u64 = env_or("SOAK_CONNECT_RATE", "2000").parse().expect("SOAK_CONNECT_RATE: streams/s");
    let window_s: u64 = env_or("SOAK_WINDOW_S", "60").parse().expect("SOAK_WINDOW_S: seconds");
    let driver = env_or("SOAK_DRIVER", "auto");
    let ramp_s = streams.div_ceil(rate);
    assert!(seconds >= ramp_s + 2 * window_s + 2, "SOAK_SECONDS must leave room for the ramp and two windows");
    let bin = env!("CARGO_BIN_EXE_ssebench");
    let addr = "127.0.0.1:19100";
    println!(
        "soak: {bin}, driver {driver}, {streams} streams for {seconds} s, cut every {DISCONNECT_AFTER} events \
         (1 event/s), --reconnect --verify-seq"
    );

    let mut server = Command::new(bin)
        .args(["serve", "--addr", addr, "--events", "0", "--interval", "1s", "--size", "100"])
        .args(["--disconnect-after", DISCONNECT_AFTER, "--driver", &driver])
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    std::thread::sleep(Duration::from_millis(500));
    let json = std::env::temp_dir().join(format!("ssebench-soak-{}.json", std::process::id()));
    let mut generator = Command::new(bin)
        .args(["run", &format!("http://{addr}/"), "-c", &streams.to_string(), "-d", &format!("{seconds}s")])
        .args(["--connect-rate", &rate.to_string(), "--driver", &driver, "--reconnect", "--verify-seq", "--json"])
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the generator");

    // One VmRSS sample a second, stamped with its second since the generator started.
    let started = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::with_capacity(seconds as usize + 1);
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        match rss_kib(generator.id()) {
            Some(kib) => samples.push((started.elapsed().as_secs(), kib)),
            None => break,
        }
    }
    let (report, cpu) = finish(&mut generator, &mut server, &json);

    let mean_kib = |from: u64, to: u64| {
        let window: Vec<u64> = samples.iter().filter(|(t, _)| (from..to).contains(t)).map(|&(_, kib)| kib).collect();
        window.iter().sum::<u64>() as f64 / window.len().max(1) as f64
    };
    let first_from = ramp_s + 1;
    let first = mean_kib(first_from, first_from + window_s);
    let last = mean_kib(seconds - window_s - 1, seconds - 1);
    let events = &report["events"];
    let streams_json = &report["streams"];
    let lost = events["lost"].as_u64().unwrap_or(u64::MAX);
    let duplicates = events["duplicates"].as_u64().unwrap_or(u64::MAX);
    let reconnects = streams_json["reconnects"].as_u64().unwrap_or(0);
    let received = events["received"].as_u64().unwrap_or(0);
    println!();
    println!("events received   {received} ({:.0}/s)", events["per_second"].as_f64().unwrap_or(0.0));
    println!("reconnects        {reconnects}");
    println!("events lost       {lost}");
    println!("events duplicated {duplicates}");
    println!("streams failed    {} {}", streams_json["failed"], streams_json["failures"]);
    println!("peak concurrent   {}", streams_json["peak_concurrent"]);
    println!(
        "generator RSS     first {window_s} s after the ramp {:.1} MB, last {window_s} s {:.1} MB: {:+.2}%",
        first / 1024.0,
        last / 1024.0,
        (last / first - 1.0) * 100.0
    );
    // The whole series, so a drift shows as a step (something sized on first use) or a slope (a leak).
    let series: Vec<String> =
        (0..seconds).step_by(30).map(|t| format!("{t}s {:.1}", mean_kib(t, t + 30) / 1024.0)).collect();
    println!("generator RSS MB  every 30 s: {}", series.join(", "));
    println!(
        "generator CPU     {:.1} s ({:.2} us/event)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / received as f64
    );
    assert_eq!((lost, duplicates), (0, 0), "every reconnect resumes after the last event it saw");
    assert!(reconnects >= streams, "every stream was cut and resumed at least once ({reconnects} reconnects)");
    assert!((last / first - 1.0).abs() <= 0.05, "RSS drifted: {first:.0} KiB -> {last:.0} KiB");
    println!("soak: PASS");
}
