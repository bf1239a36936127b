//! What the integration tests share, written once: the built-in server on 127.0.0.1:0, runs in this process (from
//! a `RunConfig` or from command-line arguments), failure lookups, plain-socket servers that read each request, a
//! plain client that keeps each read with its time (`RawReads`), programs run as children in a directory of their own
//! (`Daemon`), temporary directories, the test PKI (rcgen) and the LLM fixtures of `tests/fixtures/llm/`.
//!
//! `tests/alloc.rs` includes this file too (its own binary, for its counting allocator), so not every helper is used
//! by both binaries.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ssebench::cli::{self, Command as Cli};
use ssebench::config::{RunConfig, Target};
use ssebench::engine;
use ssebench::report::{LlmReport, Report, RequestReport};
use ssebench::server::ServeConfig;
use ssebench::server::openai::ModelShape;
use ssebench::server::{self, ServerHandle};

/// Where test servers listen: a free port on loopback.
pub const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// A loopback address free a moment ago: nothing listens there (until something else takes it).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind(LOOPBACK).unwrap().local_addr().unwrap()
}

/// The `ssebench` binary, for what a user sees: exit codes, printed reports, signals.
pub fn ssebench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssebench"))
}

// The built-in server, in this process. It is pinned from core 1; runs take core 0.

/// The tests' usual server: one thread on 127.0.0.1:0, streams of 10 events of 64 bytes, 1 ms apart.
pub fn serve_cfg() -> ServeConfig {
    ServeConfig {
        threads: 1,
        events: 10,
        interval: Duration::from_millis(1),
        size_bytes: 64,
        ..ServeConfig::new(LOOPBACK)
    }
}

pub fn serve(cfg: ServeConfig) -> ServerHandle {
    server::start(&cfg, 1).expect("server starts")
}

/// A simulated model: `tokens_per_s`, `tokens_per_chunk`, prefill per prompt word, 64 tokens unless cut.
pub fn model_server(tokens_per_s: f64, tokens_per_chunk: u32, prefill_us_per_token: u64) -> ServerHandle {
    let model = ModelShape { tokens_per_s, tokens_per_chunk, prefill_us_per_token, output_tokens: 64 };
    serve(ServeConfig { openai: Some(model), ..serve_cfg() })
}

/// `ssebench serve --addr 127.0.0.1:0 -t 1 ARGS`, parsed as a user's command line.
pub fn serve_args(args: &[&str]) -> ServerHandle {
    let argv = ["ssebench", "serve", "--addr", "127.0.0.1:0", "-t", "1"].iter().chain(args).copied();
    let Cli::Serve(cfg) = cli::parse_from(argv).unwrap_or_else(|e| panic!("{e}")) else { panic!("not serve") };
    serve(cfg)
}

/// A server that answers every request with `response` verbatim, written `piece` bytes at a time (2 ms apart).
pub fn replay(response: &[u8], piece: usize) -> ServerHandle {
    let pause = if piece < response.len() { Duration::from_millis(2) } else { Duration::ZERO };
    serve(ServeConfig {
        replay: Some(response.to_vec()),
        replay_write_bytes: piece,
        replay_pause: pause,
        ..serve_cfg()
    })
}

// Runs, in this process, on one worker thread.

/// `connections` users against `http://ADDR/events`, one thread, a 5 s connect timeout, no duration.
pub fn run_cfg(addr: SocketAddr, connections: usize) -> RunConfig {
    RunConfig {
        connections,
        duration: None,
        connect_timeout: Duration::from_secs(5),
        threads: 1,
        ..RunConfig::new(vec![Target::parse(&format!("http://{addr}/events")).unwrap()])
    }
}

/// Runs `cfg` to its end; the report as `ssebench run` prints it.
pub fn run(cfg: &RunConfig) -> Report {
    let outcome = engine::run(cfg, 0).expect("run starts");
    let mut report = Report::new("test", &outcome, &cfg.slos);
    report.request = Some(RequestReport::of(cfg));
    report
}

/// `-n streams` with `connections` users against the server at `addr`.
pub fn run_n(addr: SocketAddr, connections: usize, streams: u64) -> Report {
    run(&RunConfig { streams_limit: Some(streams), ..run_cfg(addr, connections) })
}

/// `ssebench run -t 1 ARGS`, parsed as a user's command line and run in this process.
pub fn run_args(args: &[&str]) -> Report {
    let argv = ["ssebench", "run", "-t", "1"].iter().chain(args).copied();
    let Cli::Run(cfg) = cli::parse_from(argv).unwrap_or_else(|e| panic!("{e}")) else { panic!("not a run") };
    run(&cfg)
}

/// Streams that failed with `class`. Every class is in the report (zero included), so a name that is not (a typo)
/// fails the test; only `http_<code>` appears when that status was seen.
pub fn failures(report: &Report, class: &str) -> u64 {
    match report.figures.streams.failures.get(class) {
        Some(&count) => count,
        None => {
            assert!(class.starts_with("http_"), "no failure class {class:?}");
            0
        }
    }
}

/// The `--openai` figures.
pub fn llm(report: &Report) -> &LlmReport {
    report.figures.llm.as_ref().expect("an --openai run reports tokens")
}

// Plain-socket servers, for answers the built-in server cannot give.

/// What a scripted server read from one connection.
#[derive(Debug, Clone)]
pub struct Request {
    pub peer: IpAddr,
    pub head: String,
    /// As long as the head's `Content-Length` says (empty without one).
    pub body: String,
}

impl Request {
    /// The request target of the request line.
    pub fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    /// The value of header `name` (the first one), if the request has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, value) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// The head of an SSE response without framing: its body ends when the connection closes.
pub const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

/// `SSE_HEAD` with `Connection: close`: no connection is kept alive after the body.
pub const SSE_HEAD_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

/// Reads a request head, byte by byte so nothing past it is consumed; None if the peer went away first.
pub fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    String::from_utf8(head).ok()
}

/// Reads one request: its head, then a body of its `Content-Length`.
pub fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let head = read_head(conn)?;
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0; length];
    conn.read_exact(&mut body).ok()?;
    Some(Request { peer: conn.peer_addr().ok()?.ip(), head, body: String::from_utf8(body).ok()? })
}

/// A server on 127.0.0.1:0 that serves one connection at a time, in the order they arrive: it reads one request,
/// sends it to the receiver, then runs `answer` on the connection (which closes when `answer` returns). Taking turns
/// keeps per-user figures exact: a user's next stream waits behind every other user's.
pub fn scripted_server<F>(answer: F) -> (SocketAddr, Receiver<Request>)
where
    F: Fn(&mut TcpStream, &Request) + Send + 'static,
{
    let listener = TcpListener::bind(LOOPBACK).unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, seen_rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Some(request) = read_request(&mut conn) else { continue };
            let _ = seen.send(request.clone());
            answer(&mut conn, &request);
        }
    });
    (addr, seen_rx)
}

/// A scripted server that answers every request with `SSE_HEAD` and `body`, then closes.
pub fn sse_server(body: &'static [u8]) -> (SocketAddr, Receiver<Request>) {
    scripted_server(move |conn, _| {
        let _ = conn.write_all(SSE_HEAD);
        let _ = conn.write_all(body);
    })
}

/// `serve --tls-cert CERT.pem --tls-key CERT.key EXTRA`, with a certificate of the test PKI.
pub fn tls_server(cert: &str, extra: &[&str]) -> ServerHandle {
    let pki = pki();
    let (cert, key) = (pki.path(&format!("{cert}.pem")), pki.path(&format!("{cert}.key")));
    let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
    args.extend_from_slice(extra);
    serve_args(&args)
}

/// `https://localhost:PORT/`: the name the test certificates are for.
pub fn https_url(server: &ServerHandle) -> String {
    format!("https://localhost:{}/", server.addr.port())
}

// A plain client, for what arrives on the wire and when.

/// One response as a plain socket read it: each read's bytes and when it returned, from just before the request
/// was sent. Proxies are told apart by how they cut a stream into reads, which a client that parses cannot show.
pub struct RawReads {
    pub reads: Vec<(Duration, Vec<u8>)>,
}

/// `GET /events` with `Connection: close` (so that a proxy closes after the response) and `extra` header lines (each
/// ending in `\r\n`).
pub fn get_request(extra: &str) -> Vec<u8> {
    format!("GET /events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n").into_bytes()
}

impl RawReads {
    /// Sends `request` to `addr` and reads until the peer closes, a read ends with a chunked body's last chunk, or
    /// `limit` has passed since it was sent.
    pub fn of(addr: SocketAddr, request: &[u8], limit: Duration) -> RawReads {
        let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        let sent = std::time::Instant::now();
        conn.write_all(request).unwrap();
        let mut reads = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        // The last 7 bytes so far: the last chunk may come in a read of its own.
        let mut tail = Vec::with_capacity(64 * 1024 + 7);
        while let Some(left) = limit.checked_sub(sent.elapsed()).filter(|left| !left.is_zero()) {
            conn.set_read_timeout(Some(left)).unwrap();
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reads.push((sent.elapsed(), buf[..n].to_vec())),
                // A signal meant for another thread of this process.
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            tail.extend_from_slice(&reads.last().expect("a read").1);
            tail.drain(..tail.len().saturating_sub(7));
            if tail == b"\r\n0\r\n\r\n" {
                // The last chunk: `serve` keeps the connection for a next request, `Connection: close` or not.
                break;
            }
        }
        RawReads { reads }
    }

    /// Every byte, in order.
    pub fn bytes(&self) -> Vec<u8> {
        self.reads.iter().flat_map(|(_, bytes)| bytes.iter().copied()).collect()
    }

    /// The response head, up to its blank line.
    pub fn head(&self) -> String {
        let bytes = self.bytes();
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole response head");
        String::from_utf8_lossy(&bytes[..end + 4]).into_owned()
    }

    /// When the first byte came (the limit if none did).
    pub fn first_byte(&self) -> Duration {
        self.reads.first().map_or(Duration::MAX, |(at, _)| *at)
    }

    /// Where each occurrence of `needle` starts in `bytes()`, in order.
    pub fn positions(&self, needle: &[u8]) -> Vec<usize> {
        let bytes = self.bytes();
        (0..bytes.len()).filter(|&i| bytes[i..].starts_with(needle)).collect()
    }

    /// When each occurrence of `needle` had arrived whole: the time of the read holding its last byte.
    pub fn arrivals(&self, needle: &[u8]) -> Vec<Duration> {
        let mut ends = Vec::with_capacity(self.reads.len());
        let mut total = 0;
        for (at, bytes) in &self.reads {
            total += bytes.len();
            ends.push((total, *at));
        }
        let last_byte = |start: usize| start + needle.len() - 1;
        let arrival = |start| ends.iter().find(|(end, _)| last_byte(start) < *end).expect("within the bytes").1;
        self.positions(needle).into_iter().map(arrival).collect()
    }

    /// Reads, first byte and bytes per read, for assertion messages and reports.
    pub fn summary(&self) -> String {
        let sizes: Vec<usize> = self.reads.iter().map(|(_, bytes)| bytes.len()).collect();
        let (min, max) = (sizes.iter().min().unwrap_or(&0), sizes.iter().max().unwrap_or(&0));
        let total: usize = sizes.iter().sum();
        format!(
            "{} reads, {total} B, first byte at {} ms, last at {} ms, bytes per read {min}..{max} (mean {})",
            sizes.len(),
            self.first_byte().as_millis(),
            self.reads.last().map_or(0, |(at, _)| at.as_millis()),
            total / sizes.len().max(1)
        )
    }
}

// Programs the tests drive for real (Prometheus, nginx, HAProxy), from the distribution's packages.

/// `name` on PATH or in the sbin directories Debian installs servers to (a non-root PATH lacks them), or a failure
/// saying how to get it: a missing program must not pass as a skipped test.
pub fn installed(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path).chain(sbin).map(|dir| dir.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "{name} is not installed: run .ci/run (it installs the distribution's package), or `apt-get install {name}`"
        )
    })
}

/// The Python interpreter that imports `modules` (comma-separated, as `import` takes them): `$SSEBENCH_PYTHON`
/// (`.ci/run` sets it to its venv), else `target/ci-venv/bin/python`; or a failure saying how to install `packages`
/// there: a missing package must not pass as a skipped test.
pub fn python(modules: &str, packages: &str) -> PathBuf {
    let python = match std::env::var_os("SSEBENCH_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv/bin/python"),
    };
    let setup = format!(
        "python3 -m venv target/ci-venv && target/ci-venv/bin/pip install {packages} && \\
         export SSEBENCH_PYTHON=target/ci-venv/bin/python (or run .ci/run)"
    );
    match Command::new(&python).args(["-c", &format!("import {modules}")]).output() {
        Ok(out) if out.status.success() => python,
        Ok(out) => panic!(
            "{} cannot import {modules} ({}); set it up: {setup}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("no Python interpreter at {} ({e}); set it up: {setup}", python.display()),
    }
}

/// A program running as this process's child with a directory of its own (its configuration and data, and its
/// standard output and error in `output.log`): killed, waited for and its directory removed when dropped.
pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
}

impl Daemon {
    pub fn spawn(command: &mut Command, dir: PathBuf) -> Daemon {
        let output = std::fs::File::create(dir.join("output.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        Daemon { child, dir }
    }

    /// What it has written to its standard output and error.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("output.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// Files.

/// The JSON file at `path` (a report, mostly), parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory `ssebench-NAME-PID` under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ssebench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// PEM files for one test process, made once: a CA (`ca.pem`), server certificates it signed for localhost
/// (`localhost.pem`, `localhost.key`) and for another name (`elsewhere.pem`, `elsewhere.key`), and a client
/// certificate (`client.pem`, `client.key`) from a second CA (`client-ca.pem`).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params, key)
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = temp_dir("pki");
        let write = |name: &str, pem: String| std::fs::write(dir.join(name), pem).unwrap();
        let (ca_params, ca_key) = ca("ssebench test CA");
        write("ca.pem", ca_params.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca_params, ca_key);
        for (name, sans) in [("localhost", vec!["localhost".to_string()]), ("elsewhere", vec!["elsewhere.test".into()])]
        {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans).unwrap().signed_by(&key, &issuer).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        let (client_ca_params, client_ca_key) = ca("ssebench test client CA");
        write("client-ca.pem", client_ca_params.self_signed(&client_ca_key).unwrap().pem());
        let client_issuer = Issuer::new(client_ca_params, client_ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["client.test".to_string()]).unwrap().signed_by(&key, &client_issuer);
        write("client.pem", cert.unwrap().pem());
        write("client.key", key.serialize_pem());
        Pki { dir }
    })
}

/// `text` as `scenario.toml` in a fresh directory `ssebench-scenario-NAME-PID`.
pub fn write_scenario(name: &str, text: &str) -> PathBuf {
    let dir = temp_dir(&format!("scenario-{name}"));
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

// The LLM fixtures: raw SSE bodies under `tests/fixtures/llm/`, split into `data` payloads.

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm")
}

/// Names of every `*.sse` fixture, sorted.
pub fn fixture_names() -> Vec<String> {
    let entries = std::fs::read_dir(fixture_dir()).expect("fixture dir");
    let mut names: Vec<String> = entries
        .map(|e| e.expect("dir entry").file_name().into_string().expect("utf-8 name"))
        .filter(|n| n.ends_with(".sse"))
        .collect();
    names.sort();
    names
}

/// The `data` payloads of one fixture, in order.
pub fn payloads(name: &str) -> Vec<Vec<u8>> {
    let body = std::fs::read(fixture_dir().join(name)).expect("fixture file");
    split_events(&body)
}

/// A deliberately naive SSE split, enough for the fixtures: `data:` lines (one optional space after the colon)
/// accumulate, joined by `\n`; a blank line dispatches; comments and other fields are ignored; an unterminated
/// last event is dropped, as the SSE spec says.
pub fn split_events(body: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            events.extend(data.take());
        } else if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut data {
                Some(buf) => {
                    buf.push(b'\n');
                    buf.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    events
}
