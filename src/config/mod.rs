//! Checked configuration: every limit explicit, units in names. Built from the CLI, read by everything else.

pub mod flags;
mod target;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use self::target::Target;

use crate::llm::prompt::{Api, PromptSource};
use crate::llm::scenario::Scenario;
use crate::slo::Slo;
use crate::template::{DataMode, DataSet};

/// A configuration that cannot run. Start-up only, so a string is fine here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Which monoio driver the runtimes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    /// io_uring when the kernel allows it, else epoll.
    Auto,
    IoUring,
    Epoll,
}

/// Whether each worker thread is pinned to its own core (`--pin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChoice {
    /// `run`: pinned unless every target is a loopback address; `serve`: pinned.
    Auto,
    Always,
    Never,
}

/// The shortest `--report-interval`: the engine's collector drains snapshots every 10 ms or so, and a core with no
/// emptied snapshot back yet folds its interval into the next.
pub const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(10);

/// Everything `ssebench run` needs, checked.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where streams go; virtual user `g` uses `targets[g % targets.len()]`. Never empty.
    pub targets: Vec<Target>,
    /// Source addresses to spread streams over (`--bind`); empty lets the kernel choose.
    pub bind_addrs: Vec<IpAddr>,
    /// Concurrent virtual users (closed model: each runs one stream at a time).
    pub connections: usize,
    /// Stop this long after the start; `None` with `streams_limit` set means "until N streams are done".
    pub duration: Option<Duration>,
    /// Stop after this many streams have ended (completed or failed).
    pub streams_limit: Option<u64>,
    /// New streams per second while ramping up; `None` is unlimited.
    pub connect_rate_per_s: Option<f64>,
    /// `--stages`: a step ramp of target concurrent streams; empty runs `connections` throughout.
    /// With stages, `connections` is the largest target and the stages set the duration.
    pub stages: Vec<Stage>,
    /// `--arrival-rate`: the open model; `None` is the closed model (virtual users).
    pub arrivals: Option<Arrivals>,
    /// Seeds Poisson arrivals, `--stream-duration` ranges and template randomness: the same seed
    /// gives the same schedule.
    pub seed: u64,
    pub connect_timeout: Duration,
    /// Request start (writing included) to complete response head; `None` is no limit.
    pub header_timeout: Option<Duration>,
    /// Response head to first event.
    pub first_event_timeout: Option<Duration>,
    /// Longest allowed gap between events (comments do not count).
    pub idle_timeout: Option<Duration>,
    /// Longest allowed time without any byte read or written (a half-open connection, a request nobody reads).
    pub byte_idle_timeout: Option<Duration>,
    /// A gap between events longer than this is a stall; `None` counts none.
    pub stall_threshold: Option<Duration>,
    /// Close each stream gracefully after a length drawn from this range (inclusive); `None`
    /// leaves streams open until the server ends them or the run does.
    pub stream_duration: Option<(Duration, Duration)>,
    /// Reconnect like a browser: wait the server's `retry:` (else `retry_default`) after each
    /// stream, then send `Last-Event-ID` with the last event's id.
    pub reconnect: bool,
    pub retry_default: Duration,
    /// Check that numeric event ids run consecutively within a virtual user, across reconnects.
    pub verify_seq: bool,
    /// `--shard K/N`: this process runs share K of a run split over N processes; `None` runs the whole.
    pub shard: Option<ShardOf>,
    /// `--start-at`: the wall-clock time (Unix µs) the run's clock starts, once every worker is ready.
    pub start_at_unix_us: Option<u64>,
    /// `--send-time`: where each event's send time is read, for its delivery lag; `None` times no lag.
    pub send_time: Option<Arc<crate::send_time::SendTime>>,
    /// Redirects (301, 302, 303, 307, 308) one stream follows; one more is `too_many_redirects`. 0 follows none: a
    /// redirect is then an `http_3xx` failure.
    pub max_redirects: u16,
    /// Objectives judged at the end; any failing one makes the exit code 1.
    pub slos: Vec<Slo>,
    pub method: String,
    /// Header values, the URL path and the body may hold `{{...}}` placeholders (see `template`).
    pub headers: Vec<(String, String)>,
    /// One copy, shared by every target's request and every core (`Arc`): a large `--body` is resident once.
    pub body: Arc<Vec<u8>>,
    /// `--data`: rows for `{{field}}` placeholders, and which row a request uses.
    pub data: Option<Arc<DataSet>>,
    pub data_mode: DataMode,
    pub max_event_size_bytes: usize,
    /// `--compressed`: ask for compressed bodies (`Accept-Encoding`) as browsers do. Compressed
    /// bodies are decoded whether or not they were asked for.
    pub compressed: bool,
    pub threads: usize,
    pub driver: DriverChoice,
    pub pin: PinChoice,
    pub json_path: Option<PathBuf>,
    /// `--html`: also write the report as one self-contained HTML page to this file.
    pub html_path: Option<PathBuf>,
    /// The command line that asked for this run, as typed (the report keeps it with secrets redacted:
    /// `redact_argv`); empty for runs made in code.
    pub command_line: Vec<String>,
    /// `--report-interval`: the length of each entry of the report's timeline (cores snapshot their figures this often).
    pub report_interval: Duration,
    /// `--csv`: also write the timeline as CSV to this file.
    pub csv_path: Option<PathBuf>,
    /// `--hdr-log`: also write the interval histograms as an HdrHistogram interval log to this file.
    pub hdr_log_path: Option<PathBuf>,
    /// `--metrics-addr`: serve the run's figures at `/metrics` here (Prometheus text format), updated every interval.
    pub metrics_addr: Option<SocketAddr>,
    /// `--metrics-linger`: how long `/metrics` stays up after the report, so the last scrape sees the final figures.
    pub metrics_linger: Duration,
    /// `--run-id`: the `run` label of every metric series, telling runs and generators apart.
    pub run_id: String,
    /// `--streams-log`: also write one JSON line per ended stream to this file.
    pub streams_log_path: Option<PathBuf>,
    /// The live view on stderr, one line per interval (`--quiet` turns it off). Off in `RunConfig::new`: runs made
    /// in code (tests, benches) print nothing unless they ask.
    pub live: bool,
    /// `--openai`: streams are OpenAI-compatible completions, measured in tokens.
    pub llm: Option<LlmConfig>,
    /// `https://` targets: the one client TLS config every core shares; `None` when every target is `http://`.
    pub tls: Option<crate::tls::TlsClient>,
}

/// `--openai`: what each request asks the model for, and where its prompts come from.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub api: Api,
    pub model: String,
    /// `max_tokens` of every request (a prompts file line's own wins); `None` leaves it to the server.
    pub max_tokens: Option<u64>,
    /// `--extra-body`: a JSON object whose fields join every body.
    pub extra_body: Option<String>,
    pub prompts: Arc<PromptSource>,
    /// `--scenario`: a journey of HTTP steps then a multi-turn conversation; its turns give the prompts.
    pub scenario: Option<Scenario>,
    /// For each of the scenario's HTTP steps, its own host when its path is an `http://` or `https://` URL;
    /// resolved once by [`LlmConfig::resolve_steps`].
    pub step_targets: Vec<Option<Target>>,
}

/// Bytes of each answer a journey keeps to send back as context; a longer answer is cut there.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

impl LlmConfig {
    /// The request path under a base URL: `/` and `/v1` get the API's standard path; any other is used as given.
    pub fn path_for(&self, path: &str) -> String {
        let endpoint = match self.api {
            Api::Chat => "chat/completions",
            Api::Completions => "completions",
        };
        let (path_only, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let base = path_only.trim_end_matches('/');
        let full = match base {
            "" => format!("/v1/{endpoint}"),
            "/v1" => format!("/v1/{endpoint}"),
            _ => return path.to_string(),
        };
        match query {
            Some(q) => format!("{full}?{q}"),
            None => full,
        }
    }

    /// One line for the report: API, model, max_tokens, prompts.
    pub fn describe(&self) -> String {
        let api = match self.api {
            Api::Chat => "chat",
            Api::Completions => "completions",
        };
        let max_tokens = self.scenario.as_ref().and_then(|s| s.conversation.max_tokens).or(self.max_tokens);
        let max = max_tokens.map_or("left to the server".to_string(), |m| m.to_string());
        let prompts = match (&self.scenario, self.prompts.as_ref()) {
            (Some(s), _) => format!("a scenario of {} turns after {} HTTP step(s)", s.conversation.turns, s.http.len()),
            (None, PromptSource::Synthetic { low, high }) if low == high => format!("synthetic, {low} words"),
            (None, PromptSource::Synthetic { low, high }) => format!("synthetic, {low}..{high} words"),
            (None, PromptSource::Lines(_)) => format!("{} lines from --prompts", self.prompts.lines().unwrap_or(0)),
        };
        format!("{api}, model {:?}, max_tokens {max}, prompts: {prompts}", self.model)
    }

    /// Resolves the scenario's step URLs (DNS, once per run) into `step_targets`.
    pub fn resolve_steps(&mut self) -> Result<(), ConfigError> {
        let Some(scenario) = &self.scenario else { return Ok(()) };
        self.step_targets = scenario
            .http
            .iter()
            .map(|step| match step.path.starts_with('/') {
                true => Ok(None),
                false => Target::parse(&step.path)
                    .map(Some)
                    .map_err(|e| ConfigError(format!("scenario step \"{}\": {e}", step.name))),
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Turns in a journey (0 without `--scenario`), and its HTTP steps' names.
    pub fn turns(&self) -> usize {
        self.scenario.as_ref().map_or(0, |s| s.conversation.turns as usize)
    }

    pub fn step_names(&self) -> Vec<String> {
        self.scenario.as_ref().map_or(Vec::new(), |s| s.http.iter().map(|h| h.name.clone()).collect())
    }

    /// Names of the values the scenario's HTTP steps extract.
    pub fn variables(&self) -> Vec<String> {
        self.scenario.as_ref().map_or(Vec::new(), Scenario::variables)
    }

    /// For each HTTP step, where each of its extracted values goes: its index in [`LlmConfig::variables`].
    pub fn extract_slots(&self) -> Vec<Vec<usize>> {
        let variables = self.variables();
        let slot = |name: &String| variables.iter().position(|v| v == name).expect("variables lists every extract");
        self.scenario.as_ref().map_or(Vec::new(), |s| {
            s.http.iter().map(|step| step.extract.iter().map(|(name, _)| slot(name)).collect()).collect()
        })
    }
}

/// Headers whose values are secrets: reports and messages show their name only.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"].contains(&name.as_str())
        || name.contains("token")
        || name.contains("secret")
}

/// A command line as the report shows it: secret header values (`-H`), `--api-key` and a URL's user and password
/// redacted, the program named by its file name, and each argument quoted for a POSIX shell where it needs it.
pub fn redact_argv(argv: &[String]) -> String {
    let mut shown: Vec<String> = Vec::with_capacity(argv.len());
    let mut next_is = None;
    for (i, arg) in argv.iter().enumerate() {
        let redacted = match (i, next_is.take()) {
            (0, _) => arg.rsplit('/').next().unwrap_or(arg).to_string(),
            (_, Some(Secret::Header)) => redact_header_line(arg),
            (_, Some(Secret::Whole)) => "[redacted]".to_string(),
            _ => {
                let flag = |name: &str| arg.strip_prefix(name).and_then(|rest| rest.strip_prefix('='));
                if arg == "-H" || arg == "--header" {
                    next_is = Some(Secret::Header);
                    arg.clone()
                } else if arg == "--api-key" {
                    next_is = Some(Secret::Whole);
                    arg.clone()
                } else if let Some(line) = flag("--header") {
                    format!("--header={}", redact_header_line(line))
                } else if flag("--api-key").is_some() {
                    "--api-key=[redacted]".to_string()
                } else if let Some(line) = arg.strip_prefix("-H").filter(|l| !l.is_empty() && !arg.starts_with("--")) {
                    format!("-H{}", redact_header_line(line))
                } else {
                    redact_userinfo(arg)
                }
            }
        };
        shown.push(shell_quote(&redacted));
    }
    shown.join(" ")
}

/// What the next argument of a command line is, when it is a secret.
#[derive(Clone, Copy)]
enum Secret {
    /// A `Name: value` header line.
    Header,
    /// Every byte of it.
    Whole,
}

/// `Name: value` with the value redacted as `redact_header` does.
fn redact_header_line(line: &str) -> String {
    match line.split_once(':') {
        Some((name, value)) => format!("{name}: {}", redact_header(name.trim(), value.trim())),
        None => line.to_string(),
    }
}

/// `scheme://user:password@host/...` without its user and password.
fn redact_userinfo(arg: &str) -> String {
    let Some((scheme, rest)) = arg.split_once("://") else { return arg.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}", &rest[at + 1..]),
        None => arg.to_string(),
    }
}

/// `arg` as a POSIX shell reads it back: bare when it is plain, single-quoted otherwise.
fn shell_quote(arg: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_-./:=,@%+".contains(&b);
    if !arg.is_empty() && arg.bytes().all(plain) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// `value`, or a redaction that keeps the auth scheme (`Bearer ...`) when `name` is a secret header.
pub fn redact_header(name: &str, value: &str) -> String {
    if !is_secret_header(name) {
        return value.to_string();
    }
    match value.split_once(' ') {
        Some((scheme, _)) if scheme.len() < 16 && scheme.bytes().all(|b| b.is_ascii_alphabetic()) => {
            format!("{scheme} [redacted]")
        }
        _ => "[redacted]".to_string(),
    }
}

impl RunConfig {
    /// A run against `targets` with the command line's defaults: 10 connections for 10 s, GET,
    /// 10 s connect timeout, 1 MiB events, every core, auto driver.
    pub fn new(targets: Vec<Target>) -> RunConfig {
        RunConfig {
            targets,
            bind_addrs: Vec::new(),
            connections: 10,
            duration: Some(Duration::from_secs(10)),
            streams_limit: None,
            connect_rate_per_s: None,
            stages: Vec::new(),
            arrivals: None,
            seed: 1,
            connect_timeout: Duration::from_secs(10),
            header_timeout: None,
            first_event_timeout: None,
            idle_timeout: None,
            byte_idle_timeout: None,
            stall_threshold: None,
            stream_duration: None,
            reconnect: false,
            retry_default: Duration::from_secs(3),
            verify_seq: false,
            send_time: None,
            shard: None,
            start_at_unix_us: None,
            max_redirects: crate::redirect::DEFAULT_MAX_REDIRECTS,
            slos: Vec::new(),
            method: "GET".into(),
            headers: Vec::new(),
            body: Arc::default(),
            data: None,
            data_mode: DataMode::Vu,
            max_event_size_bytes: 1 << 20,
            compressed: false,
            threads: crate::limits::available_cores(),
            driver: DriverChoice::Auto,
            pin: PinChoice::Auto,
            json_path: None,
            html_path: None,
            command_line: Vec::new(),
            report_interval: Duration::from_secs(1),
            live: false,
            csv_path: None,
            hdr_log_path: None,
            metrics_addr: None,
            metrics_linger: Duration::from_secs(10),
            run_id: "ssebench".into(),
            streams_log_path: None,
            llm: None,
            tls: None,
        }
    }

    /// The URLs the streams go to, as the report names them (with `--openai`, the API's path).
    pub fn target_urls(&self) -> Vec<String> {
        (0..self.targets.len()).map(|i| self.target_url(i)).collect()
    }

    /// The URL the streams to target `i` go to (with `--openai`, the API's path).
    pub fn target_url(&self, i: usize) -> String {
        let t = &self.targets[i];
        match &self.llm {
            Some(llm) => t.url_with_path(&llm.path_for(&t.path)),
            None => t.url(),
        }
    }

    /// Checks cross-field rules that clap cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.targets.is_empty() {
            return err("no target URL");
        }
        for bind in &self.bind_addrs {
            if let Some(t) = self.targets.iter().find(|t| t.addr.is_ipv4() != bind.is_ipv4()) {
                return err(format!("--bind {bind} cannot reach {} (IPv4 and IPv6 do not mix)", t.addr));
            }
        }
        if self.arrivals.is_some_and(|a| a.max_streams == 0) {
            return err("--max-streams must be at least 1");
        }
        if self.report_interval < MIN_REPORT_INTERVAL {
            return err(format!("--report-interval must be at least {} ms", MIN_REPORT_INTERVAL.as_millis()));
        }
        if self.run_id.is_empty() || self.run_id.len() > 128 || self.run_id.chars().any(char::is_control) {
            return err("--run-id must be 1 to 128 bytes without control characters");
        }
        if self.connections == 0 {
            return err("-c/--connections must be at least 1");
        }
        if self.threads == 0 {
            return err("--threads must be at least 1");
        }
        if self.streams_limit == Some(0) {
            return err("-n/--streams must be at least 1");
        }
        if let Some(rate) = self.connect_rate_per_s
            && !(rate.is_finite() && rate > 0.0)
        {
            return err("--connect-rate must be a positive number of streams per second");
        }
        if let Some(arrivals) = &self.arrivals {
            if !(arrivals.rate_per_s.is_finite() && arrivals.rate_per_s > 0.0) {
                return err("--arrival-rate must be a positive number of streams per second");
            }
            if !self.stages.is_empty() {
                return err("--arrival-rate and --stages do not combine: one is an open model, the other closed");
            }
            if self.reconnect {
                return err("--reconnect needs virtual users (the closed model), not --arrival-rate");
            }
        }
        if !self.stages.is_empty() && self.streams_limit.is_some() {
            return err("--stages sets the run's length; -n/--streams does not combine with it");
        }
        if self.max_event_size_bytes < 16 {
            return err("--max-event-size must be at least 16 bytes");
        }
        if !self.method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_') || self.method.is_empty() {
            return err(format!("-m/--method '{}' is not an HTTP method token", self.method));
        }
        if let Some(slo) = self.slos.iter().find(|s| s.needs_llm())
            && self.llm.is_none()
        {
            return err(format!("--slo '{}' measures tokens: it needs --openai", slo.text));
        }
        if let Some(shard) = self.shard
            && shard.count > self.connections
        {
            return err(format!(
                "--shard {}/{}: {} shards need at least {} users (-c, or --max-streams with --arrival-rate), one each",
                shard.index, shard.count, shard.count, shard.count
            ));
        }
        if let Some(slo) = self.slos.iter().find(|s| s.needs_send_time())
            && self.send_time.is_none()
        {
            return err(format!("--slo '{}' measures delivery lag: it needs --send-time", slo.text));
        }
        if let Some(llm) = &self.llm {
            if !self.body.is_empty() {
                return err(
                    "--body does not combine with --openai: the body is built from the prompts (add fields with --extra-body)",
                );
            }
            if llm.scenario.is_some() && llm.api != Api::Chat {
                return err("--scenario holds a conversation: it needs --openai chat");
            }
            if llm.scenario.is_some() && (self.reconnect || self.verify_seq) {
                return err("--scenario does not combine with --reconnect or --verify-seq");
            }
        }
        if let Some(llm) = &self.llm {
            let steps = llm.scenario.as_ref().map_or(0, |s| s.http.len());
            if llm.step_targets.len() != steps {
                return err("the scenario's step URLs are not resolved (LlmConfig::resolve_steps)");
            }
        }
        Ok(())
    }
}

/// One step of `--stages`: hold `streams` concurrent streams for `hold` (after ramping to them
/// at `--connect-rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub streams: usize,
    pub hold: Duration,
}

/// `--shard K/N`: one of N processes that together make one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardOf {
    /// From 0.
    pub index: usize,
    pub count: usize,
}

impl ShardOf {
    /// `K/N` (K from 0 to N-1), or `auto` with `shards`: K from `JOB_COMPLETION_INDEX`, as a Kubernetes Indexed Job
    /// sets it (`env` is the variable's value, if set).
    pub fn parse(text: &str, shards: Option<usize>, env: Option<&str>) -> Result<ShardOf, String> {
        let (index, count) = match text {
            "auto" => {
                let count = shards.ok_or("--shard auto needs --shards N")?;
                let index = env.ok_or("--shard auto reads JOB_COMPLETION_INDEX, which is not set")?;
                let index =
                    index.trim().parse().map_err(|_| format!("JOB_COMPLETION_INDEX {index:?} is not a number"))?;
                (index, count)
            }
            _ => {
                let (k, n) = text.split_once('/').ok_or_else(|| format!("--shard {text:?}: expected K/N or auto"))?;
                let bad = || format!("--shard {text:?}: K and N are whole numbers, K from 0 to N-1");
                if shards.is_some() {
                    return Err("--shards goes with --shard auto; --shard K/N says N itself".into());
                }
                (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?)
            }
        };
        if count == 0 || index >= count {
            return Err(format!("--shard {index}/{count}: K runs from 0 to N-1, and N is at least 1"));
        }
        Ok(ShardOf { index, count })
    }
}

/// The open model: new streams arrive on a schedule, whether or not earlier ones have ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrivals {
    pub rate_per_s: f64,
    /// Exponential gaps between arrivals (a Poisson process) instead of even ones.
    pub poisson: bool,
    /// Most streams open at once; an arrival finding them all busy is dropped and counted.
    pub max_streams: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_k_of_n_or_the_job_index() {
        let of = |text, shards, env| ShardOf::parse(text, shards, env);
        assert_eq!(of("2/3", None, None), Ok(ShardOf { index: 2, count: 3 }));
        assert_eq!(of("auto", Some(5), Some("4")), Ok(ShardOf { index: 4, count: 5 }));
        assert!(of("3/3", None, None).unwrap_err().contains("K runs from 0 to N-1"));
        assert!(of("0/0", None, None).is_err());
        assert!(of("x/3", None, None).unwrap_err().contains("whole numbers"));
        assert!(of("1-3", None, None).unwrap_err().contains("expected K/N or auto"));
        assert!(of("auto", None, Some("1")).unwrap_err().contains("needs --shards"));
        assert!(of("auto", Some(2), None).unwrap_err().contains("JOB_COMPLETION_INDEX"));
        assert!(of("auto", Some(2), Some("2")).is_err(), "an index past the count");
        assert!(of("1/2", Some(2), None).unwrap_err().contains("--shards goes with --shard auto"));
    }

    #[test]
    fn a_command_line_keeps_no_secret() {
        let argv: Vec<String> = [
            "/usr/local/bin/ssebench",
            "run",
            "https://alice:hunter2@api.example.com/v1?x=1",
            "-H",
            "Authorization: Bearer sk-live-1",
            "--header=X-Api-Key: k2",
            "-HCookie: c3",
            "-H",
            "Accept: text/event-stream",
            "--api-key",
            "sk-4",
            "--api-key=sk-5",
            "--body",
            "{\"q\": \"it's\"}",
            "-c",
            "100",
        ]
        .map(String::from)
        .to_vec();
        let shown = redact_argv(&argv);
        for secret in ["alice", "hunter2", "sk-live-1", "k2", "c3", "sk-4", "sk-5"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(
            shown,
            "ssebench run 'https://[redacted]@api.example.com/v1?x=1' -H 'Authorization: Bearer [redacted]' \
             '--header=X-Api-Key: [redacted]' '-HCookie: [redacted]' -H 'Accept: text/event-stream' \
             --api-key '[redacted]' '--api-key=[redacted]' --body '{\"q\": \"it'\\''s\"}' -c 100"
        );
    }

    #[test]
    fn llm_target_urls_keep_the_scheme() {
        let prompts = Arc::new(PromptSource::synthetic(1, 1));
        let llm = LlmConfig {
            api: Api::Chat,
            model: "m".into(),
            max_tokens: None,
            extra_body: None,
            prompts,
            scenario: None,
            step_targets: Vec::new(),
        };
        let targets = ["https://localhost/v1", "http://127.0.0.1:8080/x?q"].map(|url| Target::parse(url).unwrap());
        let cfg = RunConfig { llm: Some(llm), ..RunConfig::new(targets.to_vec()) };
        assert_eq!(cfg.target_urls(), ["https://localhost/v1/chat/completions", "http://127.0.0.1:8080/x?q"]);
    }
}
