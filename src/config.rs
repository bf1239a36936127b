//! Checked configuration: every limit explicit, units in names. Built from the CLI, read by everything else.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use crate::http1::request::RequestSpec;
use crate::llm::prompt::{self, Api, PromptSource};
use crate::llm::scenario::Scenario;
use crate::template::{DataMode, DataSet, LlmBody, RequestTemplate, TargetRequest};

/// A configuration that cannot run. Start-up only, so a string is fine here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
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

/// Where the streams go: a parsed `http://` or `https://` URL, resolved once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header value: the URL's authority (host and, if given, port).
    pub host_header: String,
    /// Origin-form request target (path and query).
    pub path: String,
    /// `https://`: the URL's host as TLS names it (checked once, here), sent as SNI and checked against the
    /// certificate; `None` for `http://`.
    pub tls_name: Option<rustls::pki_types::ServerName<'static>>,
}

/// The parts of a URL a target is built from.
#[derive(Clone)]
struct UrlParts {
    host: String,
    port: u16,
    host_header: String,
    path: String,
    tls_name: Option<rustls::pki_types::ServerName<'static>>,
}

impl Target {
    /// The URL as the report names it.
    pub fn url(&self) -> String {
        let scheme = if self.tls_name.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host_header, self.path)
    }

    /// Parses an `http://` or `https://` URL and resolves its host (once, at start-up).
    pub fn parse(url: &str) -> Result<Target, ConfigError> {
        let parts = Self::split(url)?;
        let addr = (parts.host.as_str(), parts.port)
            .to_socket_addrs()
            .map_err(|e| ConfigError(format!("{url}: cannot resolve '{}': {e}", parts.host)))?
            .next()
            .ok_or_else(|| ConfigError(format!("{url}: '{}' resolves to no address", parts.host)))?;
        Ok(Target::at(addr, parts))
    }

    /// The URL's Host and path sent to each of `addrs` (`--target-addrs`): its host need not resolve.
    pub fn with_addrs(url: &str, addrs: &[SocketAddr]) -> Result<Vec<Target>, ConfigError> {
        let parts = Self::split(url)?;
        Ok(addrs.iter().map(|&addr| Target::at(addr, parts.clone())).collect())
    }

    fn at(addr: SocketAddr, parts: UrlParts) -> Target {
        Target { addr, host_header: parts.host_header, path: parts.path, tls_name: parts.tls_name }
    }

    /// The parts of an `http://` or `https://` URL.
    fn split(url: &str) -> Result<UrlParts, ConfigError> {
        let (rest, tls) = if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (rest, false)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (rest, true)
        } else {
            return err(format!("{url}: the URL must start with http:// or https://"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let path = match path.find('#') {
            Some(i) => path[..i].to_string(),
            None => path,
        };
        if authority.is_empty() || authority.contains('@') {
            return err(format!("{url}: expected http[s]://host[:port]/path (no user info)"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| ConfigError(format!("{url}: bad host or port in '{authority}'")))?;
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return err(format!("{url}: the path has spaces or control characters; percent-encode them"));
        }
        // A host TLS cannot name would fail every connection: say so now.
        let tls_name = match tls {
            false => None,
            true => Some(
                rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|_| ConfigError(format!("{url}: '{host}' is not a valid TLS server name")))?,
            ),
        };
        Ok(UrlParts { host: host.to_string(), port, host_header: authority.to_string(), path, tls_name })
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        return match &rest[end + 1..] {
            "" => Some((host, default_port)),
            port => Some((host, port.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, default_port)),
    }
}

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
    /// Request written to complete response head; `None` is no limit.
    pub header_timeout: Option<Duration>,
    /// Response head to first event.
    pub first_event_timeout: Option<Duration>,
    /// Longest allowed gap between events (comments do not count).
    pub idle_timeout: Option<Duration>,
    /// Longest allowed time without any byte (a half-open connection).
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
    /// Objectives judged at the end; any failing one makes the exit code 1.
    pub slos: Vec<crate::slo::Slo>,
    pub method: String,
    /// Header values, the URL path and the body may hold `{{...}}` placeholders (see `template`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `--data`: rows for `{{field}}` placeholders, and which row a request uses.
    pub data: Option<DataSet>,
    pub data_mode: DataMode,
    pub max_event_size_bytes: usize,
    pub threads: usize,
    pub driver: DriverChoice,
    pub json_path: Option<PathBuf>,
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
            slos: Vec::new(),
            method: "GET".into(),
            headers: Vec::new(),
            body: Vec::new(),
            data: None,
            data_mode: DataMode::Vu,
            max_event_size_bytes: 1 << 20,
            threads: crate::runtime::available_cores(),
            driver: DriverChoice::Auto,
            json_path: None,
            llm: None,
            tls: None,
        }
    }

    /// The URLs the streams go to, as the report names them (with `--openai`, the API's path).
    pub fn target_urls(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|t| match &self.llm {
                Some(llm) => format!("http://{}{}", t.host_header, llm.path_for(&t.path)),
                None => t.url(),
            })
            .collect()
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
        // Templates are parsed now, so a bad one stops the run before it starts, never midway.
        self.requests(&|name| std::env::var(name).ok())?;
        self.step_requests(&|name| std::env::var(name).ok())?;
        Ok(())
    }

    /// `--scenario`: for each HTTP step, its own host when its path is an `http://` or `https://` URL (resolved once, now).
    pub fn step_targets(&self) -> Result<Vec<Option<Target>>, ConfigError> {
        let Some(scenario) = self.llm.as_ref().and_then(|l| l.scenario.as_ref()) else { return Ok(Vec::new()) };
        scenario
            .http
            .iter()
            .map(|step| match step.path.starts_with('/') {
                true => Ok(None),
                false => Target::parse(&step.path)
                    .map(Some)
                    .map_err(|e| ConfigError(format!("scenario step \"{}\": {e}", step.name))),
            })
            .collect()
    }

    /// `--scenario`: each target's HTTP step requests, in step order (empty without a scenario).
    pub fn step_requests(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Vec<RequestTemplate>>, ConfigError> {
        let Some(scenario) = self.llm.as_ref().and_then(|l| l.scenario.as_ref()) else { return Ok(Vec::new()) };
        let variables = scenario.variables();
        let own_targets = self.step_targets()?;
        let users = self.connections as u64;
        let mut per_target = Vec::with_capacity(self.targets.len());
        for target in &self.targets {
            let mut steps = Vec::with_capacity(scenario.http.len());
            for (step, own) in scenario.http.iter().zip(&own_targets) {
                let (host, path) = match own {
                    Some(own) => (&own.host_header, &own.path),
                    None => (&target.host_header, &step.path),
                };
                // Each step has its own headers: the run's -H headers go to the conversation only.
                let spec = RequestSpec {
                    method: &step.method,
                    path,
                    host,
                    headers: &step.headers,
                    body: step.body.as_bytes(),
                };
                let template = RequestTemplate::new(
                    &spec,
                    self.data.clone(),
                    self.data_mode,
                    users,
                    self.seed,
                    env,
                    &variables,
                    None,
                )
                .map_err(|e| ConfigError(format!("scenario step \"{}\": {e}", step.name)))?;
                steps.push(template);
            }
            per_target.push(steps);
        }
        Ok(per_target)
    }

    /// Each target's request: encoded once, or a template where it has placeholders. `env`
    /// looks up `{{env NAME}}`.
    pub fn requests(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<TargetRequest>, ConfigError> {
        let users = self.connections as u64;
        let mut requests = Vec::with_capacity(self.targets.len());
        let (llm_prefix, variables) = match &self.llm {
            Some(llm) => (
                Some(prompt::body_prefix(&llm.model, llm.extra_body.as_deref()).map_err(ConfigError)?),
                llm.variables(),
            ),
            None => (None, Vec::new()),
        };
        for target in &self.targets {
            let path = match &self.llm {
                Some(llm) => llm.path_for(&target.path),
                None => target.path.clone(),
            };
            let spec = RequestSpec {
                method: &self.method,
                path: &path,
                host: &target.host_header,
                headers: &self.headers,
                body: llm_prefix.as_ref().map_or(&self.body[..], |p| p.as_bytes()),
            };
            let llm_body = self.llm.as_ref().map(|llm| LlmBody {
                api: llm.api,
                prompts: llm.prompts.clone(),
                max_tokens: llm.scenario.as_ref().and_then(|s| s.conversation.max_tokens).or(llm.max_tokens),
            });
            let template = RequestTemplate::new(
                &spec,
                self.data.clone(),
                self.data_mode,
                users,
                self.seed,
                env,
                &variables,
                llm_body,
            )
            .map_err(ConfigError)?;
            requests.push(if template.is_static() {
                TargetRequest::Encoded(crate::http1::request::encode(&spec))
            } else {
                TargetRequest::Template(Box::new(template))
            });
        }
        if self.data.is_some() && requests.iter().all(|r| matches!(r, TargetRequest::Encoded(_))) {
            return err("--data is given but no header, path or body uses a {{field}} from it");
        }
        Ok(requests)
    }
}

/// One step of `--stages`: hold `streams` concurrent streams for `hold` (after ramping to them
/// at `--connect-rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub streams: usize,
    pub hold: Duration,
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

/// Parses `--stages 100:30s,500:30s,1000:1m`: target concurrent streams and hold time per stage.
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((streams, hold)) = item.split_once(':') else {
            return Err(format!("stage '{item}': expected STREAMS:HOLD, e.g. 100:30s"));
        };
        let streams: usize =
            streams.trim().parse().map_err(|_| format!("stage '{item}': '{streams}' is not a stream count"))?;
        let hold = parse_duration(hold).map_err(|e| format!("stage '{item}': {e}"))?;
        if hold.is_zero() {
            return Err(format!("stage '{item}': the hold time must be positive"));
        }
        stages.push(Stage { streams, hold });
    }
    if stages.is_empty() {
        return Err("expected at least one stage, e.g. 100:30s,500:30s".into());
    }
    if stages.iter().all(|s| s.streams == 0) {
        return Err(format!("'{s}': every stage has 0 streams"));
    }
    Ok(stages)
}

/// Everything `ssebench serve` needs, checked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen addresses; every thread listens on each. Never empty.
    pub addrs: Vec<SocketAddr>,
    pub threads: usize,
    pub driver: DriverChoice,
    /// Events per stream; 0 streams forever.
    pub events: u64,
    pub interval: Duration,
    /// Bytes in each event's `data:` value (the send timestamp counts towards it).
    pub size_bytes: usize,
    pub first_delay: Duration,
    /// Each event is sent up to this much earlier or later than its schedule.
    pub jitter: Duration,
    /// Serve these bytes verbatim (a whole HTTP response) instead of generated events.
    pub replay: Option<Vec<u8>>,
    /// Write replayed bytes in pieces of this size, pausing `replay_pause` between them.
    pub replay_write_bytes: usize,
    pub replay_pause: Duration,
    /// Cut each connection after this many events (no last chunk); `None` never.
    pub disconnect_after: Option<u64>,
    /// `--openai`: answer `/v1/chat/completions` and `/v1/completions` as a model would.
    pub openai: Option<crate::server::openai::ModelShape>,
    /// `--tls-cert`/`--tls-key`: serve HTTPS with this config.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ServeConfig {
    /// A server on `addr` with the command line's defaults: streams of 100 events of 100 bytes, 100 ms apart,
    /// no first delay, jitter or cut; every core, auto driver; plain HTTP, generated events (no replay, no
    /// simulated model).
    pub fn new(addr: SocketAddr) -> ServeConfig {
        ServeConfig {
            addrs: vec![addr],
            threads: crate::runtime::available_cores(),
            driver: DriverChoice::Auto,
            events: 100,
            interval: Duration::from_millis(100),
            size_bytes: 100,
            first_delay: Duration::ZERO,
            jitter: Duration::ZERO,
            replay: None,
            replay_write_bytes: 64 * 1024,
            replay_pause: Duration::ZERO,
            disconnect_after: None,
            openai: None,
            tls: None,
        }
    }
}

/// Parses `250us`, `10ms`, `1.5s`, `5m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{s}' is not a duration (e.g. 500ms, 30s, 5m)"))?;
    let scale_s = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("'{s}': unknown unit '{other}' (use us, ms, s, m or h)")),
    };
    let secs = value * scale_s;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("'{s}' is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `--stream-duration`: `30s`, or a range `30s..5m` drawn from uniformly per stream.
pub fn parse_duration_range(s: &str) -> Result<(Duration, Duration), String> {
    let (low, high) = match s.split_once("..") {
        Some((low, high)) => (parse_duration(low)?, parse_duration(high)?),
        None => {
            let d = parse_duration(s)?;
            (d, d)
        }
    };
    if low.is_zero() || high < low {
        return Err(format!("'{s}': expected a positive duration or a range LOW..HIGH with LOW <= HIGH"));
    }
    Ok((low, high))
}

/// Parses `512`, `64KiB`, `1MiB`, `1MB`, `4k`: bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: usize = number.parse().map_err(|_| format!("'{s}' is not a size (e.g. 512, 64KiB, 1MiB)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("'{s}': unknown unit '{other}' (use KiB, MiB or GiB)")),
    };
    value.checked_mul(scale).ok_or_else(|| format!("'{s}' is too large"))
}

/// Most source addresses one `--bind` may expand to.
pub const MAX_BIND_ADDRS: usize = 65_536;

/// Parses `--bind`: comma-separated addresses, ranges `A-B` and CIDR blocks `A/N` (IPv4 blocks
/// of /30 and wider leave out their network and broadcast addresses).
pub fn parse_bind_list(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (first, last, v4) = bind_item_bounds(item)?;
        let room = (MAX_BIND_ADDRS - out.len()) as u128;
        let count = last.checked_sub(first).and_then(|d| d.checked_add(1)).filter(|&n| n <= room);
        let Some(count) = count else {
            return Err(format!("--bind {item}: an empty range, or more than {MAX_BIND_ADDRS} addresses in all"));
        };
        for n in 0..count {
            let value = first + n;
            out.push(if v4 { IpAddr::V4(Ipv4Addr::from(value as u32)) } else { IpAddr::V6(Ipv6Addr::from(value)) });
        }
    }
    if out.is_empty() {
        return Err("--bind needs at least one address".into());
    }
    Ok(out)
}

/// The first and last address of one `--bind` item, as integers, and whether they are IPv4.
fn bind_item_bounds(item: &str) -> Result<(u128, u128, bool), String> {
    let parse = |a: &str| -> Result<(u128, bool), String> {
        match a.trim().parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => Ok((u128::from(u32::from(v4)), true)),
            Ok(IpAddr::V6(v6)) => Ok((u128::from(v6), false)),
            Err(_) => Err(format!("--bind: '{a}' is not an IP address")),
        }
    };
    if let Some((addr, prefix)) = item.split_once('/') {
        let (base, v4) = parse(addr)?;
        let bits = if v4 { 32 } else { 128 };
        let prefix: u32 =
            prefix.parse().ok().filter(|&p| p <= bits).ok_or(format!("--bind {item}: bad prefix length"))?;
        let host_bits = bits - prefix;
        let size = 1u128.checked_shl(host_bits).unwrap_or(0);
        let first = if host_bits == 128 { 0 } else { base >> host_bits << host_bits };
        let last = first.wrapping_add(size.wrapping_sub(1));
        return Ok(if v4 && host_bits >= 2 { (first + 1, last - 1, v4) } else { (first, last, v4) });
    }
    if let Some((a, b)) = item.split_once('-') {
        let ((a, a4), (b, b4)) = (parse(a)?, parse(b)?);
        if a4 != b4 {
            return Err(format!("--bind {item}: both ends must be IPv4 or both IPv6"));
        }
        return Ok((a, b, a4));
    }
    let (a, v4) = parse(item)?;
    Ok((a, a, v4))
}

/// Parses `Name: value`, refusing bytes that would break the request framing.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once(':').ok_or_else(|| format!("header '{s}' has no ':' (use 'Name: value')"))?;
    let name = name.trim();
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(format!("header name '{name}' is not a valid HTTP token"));
    }
    let value = value.trim();
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("header '{name}' has CR, LF or NUL in its value"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("250us", Duration::from_micros(250)),
            ("10ms", Duration::from_millis(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("30", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), Ok(expected), "{input}");
        }
        for bad in ["", "s", "10x", "-1s", "1e999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duration_ranges() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration_range("30s"), Ok((s(30), s(30))));
        assert_eq!(parse_duration_range("30s..5m"), Ok((s(30), s(300))));
        for bad in ["0s", "5m..30s", "..", "1s..x"] {
            assert!(parse_duration_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stages() {
        let s = Duration::from_secs;
        assert_eq!(
            parse_stages("100:30s, 500:1m,0:5s"),
            Ok(vec![
                Stage { streams: 100, hold: s(30) },
                Stage { streams: 500, hold: s(60) },
                Stage { streams: 0, hold: s(5) }
            ])
        );
        for bad in ["", "100", "100:0s", "x:1s", "100:fast", "0:1s,0:2s", "-5:1s"] {
            let err = parse_stages(bad).unwrap_err();
            assert!(err.contains(bad) || bad.is_empty() || bad == "-5:1s", "{bad}: {err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header("X-Id:  42 "), Ok(("X-Id".into(), "42".into())));
        assert_eq!(parse_header("Authorization: Bearer a:b"), Ok(("Authorization".into(), "Bearer a:b".into())));
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header("X: a\r\nInjected: 1").is_err());
    }

    #[test]
    fn bind_lists() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_bind_list("127.0.0.1"), Ok(vec![v4("127.0.0.1")]));
        assert_eq!(parse_bind_list("127.0.0.1, 127.0.0.9"), Ok(vec![v4("127.0.0.1"), v4("127.0.0.9")]));
        assert_eq!(parse_bind_list("127.0.0.254-127.0.1.1").unwrap().len(), 4);
        let block = parse_bind_list("127.0.0.0/28").unwrap();
        assert_eq!((block.len(), block[0], block[13]), (14, v4("127.0.0.1"), v4("127.0.0.14")));
        assert_eq!(parse_bind_list("10.1.2.3/32"), Ok(vec![v4("10.1.2.3")]));
        assert_eq!(parse_bind_list("127.0.0.1 - 127.0.0.2"), Ok(vec![v4("127.0.0.1"), v4("127.0.0.2")]));
        assert_eq!(parse_bind_list(" 10.0.0.0 /30").unwrap()[0], v4("10.0.0.1"));
        assert_eq!(parse_bind_list("::1"), Ok(vec![v4("::1")]));
        assert_eq!(parse_bind_list("fd00::/126").unwrap().len(), 4);
        for bad in ["", "x", "127.0.0.9-127.0.0.1", "127.0.0.1-::1", "10.0.0.0/33", "10.0.0.0/8", "::/64"] {
            assert!(parse_bind_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080/events?a=1#frag").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.path, "/events?a=1");
        let t = Target::parse("HTTP://127.0.0.1").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
        let t = Target::parse("http://[::1]:9000?x").unwrap();
        assert_eq!(t.addr, "[::1]:9000".parse().unwrap());
        let tls_name = |t: &Target| t.tls_name.as_ref().map(|n| n.to_str().into_owned());
        assert_eq!((t.path.as_str(), tls_name(&t).as_deref()), ("/?x", None));
        let t = Target::parse("HTTPS://localhost/v1").unwrap();
        assert_eq!((t.addr.port(), tls_name(&t).as_deref()), (443, Some("localhost")));
        assert_eq!(t.url(), "https://localhost/v1");
        let t = Target::parse("https://[::1]:8443/").unwrap();
        assert_eq!((t.addr.port(), tls_name(&t).as_deref(), t.host_header.as_str()), (8443, Some("::1"), "[::1]:8443"));
        for bad in ["ftp://x/", "127.0.0.1:80", "http://", "http://h:notaport/", "http://u@h/", "https://"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
