//! Scale benchmark: `ssebench serve` and `ssebench run` as separate processes at growing stream counts.
//!
//! `cargo bench --bench scale` prints, per stream count: streams held, failures, generator and
//! server RSS per stream, generator CPU time per event, and events/s; then projects what a
//! 64-core, 256 GB box could hold. Knobs (environment):
//! `SCALE_STREAMS` (default `1000,5000,10000,19000`), `SCALE_HOLD_S` (seconds at full count, default 20),
//! `SCALE_DRIVER` (`auto`, `io_uring`, `epoll`), `SCALE_CONNECT_RATE` (default 5000), `SCALE_TLS=1` (HTTPS on both
//! sides, with a throw-away CA and certificate made for the run), `SCALE_EXTRA_ARGS` (space-separated extra flags for
//! the generator, e.g. `--quiet`). The generator's stderr is a pipe: its live view prints a line every 10 s.
//!
//! Under `cargo test` (no `--bench` argument) it only says how to run it: it takes minutes.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{env_or, finish, rss_kib};

/// Events per stream per second and payload size: the steady-state shape.
const EVENT_INTERVAL: &str = "1s";
const EVENT_SIZE: &str = "100";

struct Row {
    streams: u64,
    held: u64,
    failed: u64,
    /// The generator's own figure: (peak RSS - RSS with workers set up, nothing connected) / streams.
    gen_bytes_per_stream: f64,
    server_bytes_per_stream: f64,
    cpu_us_per_event: f64,
    events_per_s: f64,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale: skipped under cargo test; run `cargo bench --bench scale` (takes minutes)");
        return;
    }
    let streams: Vec<u64> = env_or("SCALE_STREAMS", "1000,5000,10000,19000")
        .split(',')
        .map(|s| s.trim().parse().expect("SCALE_STREAMS: comma-separated numbers"))
        .collect();
    let hold_s: u64 = env_or("SCALE_HOLD_S", "20").parse().expect("SCALE_HOLD_S: seconds");
    let driver = env_or("SCALE_DRIVER", "auto");
    let rate: u64 = env_or("SCALE_CONNECT_RATE", "5000").parse().expect("SCALE_CONNECT_RATE: streams/s");
    let tls = (env_or("SCALE_TLS", "0") == "1").then(throwaway_certificates);
    let bin = env!("CARGO_BIN_EXE_ssebench");
    println!(
        "scale: {bin}, driver {driver}, {hold_s} s at full count, 1 event/s per stream, {EVENT_SIZE}-byte payloads, {}",
        if tls.is_some() { "HTTPS (TLS 1.3, ECDSA P-256)" } else { "plain HTTP" }
    );
    let mut rows = Vec::new();
    for (i, &n) in streams.iter().enumerate() {
        let port = 19_000 + i as u16;
        rows.push(measure(bin, n, hold_s, &driver, rate, port, tls.as_ref()));
        print_table(&rows);
    }
    print_projection(&rows);
}

/// `SCALE_TLS=1`: a CA and a certificate for localhost, as PEM files in a fresh temporary directory.
struct Certificates {
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn throwaway_certificates() -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = std::env::temp_dir().join(format!("ssebench-scale-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).expect("CA certificate").pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["localhost".to_string()]).expect("params").signed_by(&key, &issuer);
    let files = Certificates { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") };
    std::fs::write(&files.ca, ca_pem).expect("write CA");
    std::fs::write(&files.cert, cert.expect("server certificate").pem()).expect("write certificate");
    std::fs::write(&files.key, key.serialize_pem()).expect("write key");
    files
}

fn measure(bin: &str, n: u64, hold_s: u64, driver: &str, rate: u64, port: u16, tls: Option<&Certificates>) -> Row {
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(bin);
    server
        .args(["serve", "--addr", &addr, "--events", "0", "--interval", EVENT_INTERVAL, "--size", EVENT_SIZE])
        .args(["--driver", driver]);
    let mut url = format!("http://{addr}/");
    if let Some(tls) = tls {
        server.arg("--tls-cert").arg(&tls.cert).arg("--tls-key").arg(&tls.key);
        url = format!("https://localhost:{port}/");
    }
    let mut server = server.stderr(Stdio::null()).spawn().expect("start the server");
    std::thread::sleep(Duration::from_millis(500));
    let server_rss_before = rss_kib(server.id()).expect("server RSS");
    let ramp_s = n.div_ceil(rate);
    let duration_s = ramp_s + hold_s + 2;
    let json = std::env::temp_dir().join(format!("ssebench-scale-{n}.json"));
    let mut generator = Command::new(bin);
    generator
        .args(["run", &url, "-c", &n.to_string(), "-d", &format!("{duration_s}s")])
        .args(["--connect-rate", &rate.to_string(), "--driver", driver, "--json"])
        .arg(&json);
    if let Some(tls) = tls {
        generator.arg("--cacert").arg(&tls.ca);
    }
    generator.args(env_or("SCALE_EXTRA_ARGS", "").split_whitespace());
    let mut generator = generator.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start the generator");
    // Sample the server at steady state: ramp done plus half the hold.
    std::thread::sleep(Duration::from_secs(ramp_s + 1 + hold_s / 2));
    let server_rss_held = rss_kib(server.id()).unwrap_or(0);
    let (report, cpu) = finish(&mut generator, &mut server, &json);
    let events = report["events"]["received"].as_u64().unwrap_or(0);
    let per_stream = |after: u64, before: u64| (after.saturating_sub(before) * 1024) as f64 / n as f64;
    Row {
        streams: n,
        held: report["streams"]["interrupted"].as_u64().unwrap_or(0),
        failed: report["streams"]["failed"].as_u64().unwrap_or(0),
        gen_bytes_per_stream: report["memory"]["per_stream_bytes"].as_f64().unwrap_or(f64::NAN),
        server_bytes_per_stream: per_stream(server_rss_held, server_rss_before),
        cpu_us_per_event: if events > 0 { cpu.as_secs_f64() * 1e6 / events as f64 } else { f64::NAN },
        events_per_s: report["events"]["per_second"].as_f64().unwrap_or(0.0),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:>8} {:>8} {:>8} {:>14} {:>14} {:>12} {:>10}",
        "streams", "held", "failed", "gen B/stream", "server B/str", "CPU us/event", "events/s"
    );
    for r in rows {
        println!(
            "{:>8} {:>8} {:>8} {:>14.0} {:>14.0} {:>12.2} {:>10.0}",
            r.streams,
            r.held,
            r.failed,
            r.gen_bytes_per_stream,
            r.server_bytes_per_stream,
            r.cpu_us_per_event,
            r.events_per_s
        );
    }
}

/// What a 64-core, 256 GB box could hold, from the largest measured row.
fn print_projection(rows: &[Row]) {
    let Some(r) = rows.iter().max_by_key(|r| r.streams) else { return };
    const CORES: f64 = 64.0;
    const MEMORY_BYTES: f64 = 256e9;
    // Kernel memory per mostly idle socket (socket, TCP state, small buffers), for both ends.
    const KERNEL_BYTES_PER_SOCKET: f64 = 3072.0;
    let per_stream_bytes = r.gen_bytes_per_stream + KERNEL_BYTES_PER_SOCKET;
    // Leave a quarter of the memory to the kernel's page cache, buffers and everything else.
    let by_memory = MEMORY_BYTES * 0.75 / per_stream_bytes;
    let events_per_core_s = 1e6 / r.cpu_us_per_event;
    let by_cpu_at_1_per_s = events_per_core_s * CORES;
    println!();
    println!(
        "projection, 64 cores / 256 GB, generator alone: memory allows ~{:.1} M streams ({:.0} B user + {:.0} B kernel each); \
         CPU allows ~{:.1} M events/s ({:.2} us/event), i.e. ~{:.1} M streams at 1 event/s each",
        by_memory / 1e6,
        r.gen_bytes_per_stream,
        KERNEL_BYTES_PER_SOCKET,
        by_cpu_at_1_per_s / 1e6,
        r.cpu_us_per_event,
        by_cpu_at_1_per_s / 1e6
    );
    println!(
        "(ports: each source address reaches ~28k streams per target address:port; use --bind and several targets)"
    );
}
