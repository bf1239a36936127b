//! `ssebench run`'s flags (clap types) and their conversion into a checked `RunConfig`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cli::EngineArgs;
use crate::config::flags;
use crate::config::{self, Arrivals, ConfigError, LlmConfig, RunConfig, Target};
use crate::llm::prompt::{self, Api, PromptSource};
use crate::llm::scenario::{Scenario, UserTurns};
use crate::send_time::SendTime;
use crate::slo::Slo;
use crate::template::{DataMode, DataSet};
use crate::units;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Target URL (http://host[:port]/path or https://...); repeat it to spread streams over several servers
    #[arg(required = true)]
    urls: Vec<String>,
    /// Connect to these addresses (comma-separated host:port) with the one URL's Host and path
    #[arg(long, value_delimiter = ',')]
    target_addrs: Vec<SocketAddr>,
    /// Source addresses to spread streams over: a list, a range A-B, or a CIDR block (127.0.0.0/28)
    #[arg(long, value_parser = parse_bind)]
    bind: Option<BindList>,
    /// Concurrent streams (virtual users; each opens its next stream when one ends)
    #[arg(short = 'c', long = "connections", default_value_t = 10)]
    connections: usize,
    /// Run this long (e.g. 30s, 5m) [default: 10s, or until -n streams are done]
    #[arg(short = 'd', long, value_parser = units::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many streams have ended (completed or failed)
    #[arg(short = 'n', long = "streams")]
    streams: Option<u64>,
    /// New streams per second while ramping up (and between --stages) [default: unlimited]
    #[arg(long)]
    connect_rate: Option<f64>,
    /// Step ramp: target concurrent streams and hold time per stage, e.g. 100:30s,500:30s,1000:1m; a report per stage
    #[arg(long, value_parser = parse_stages, conflicts_with_all = ["connections", "duration", "streams"])]
    stages: Option<StageList>,
    /// Open model: start this many new streams per second, whether or not earlier ones ended
    #[arg(long, conflicts_with_all = ["connections", "stages"])]
    arrival_rate: Option<f64>,
    /// With --arrival-rate: even gaps between arrivals, or exponential ones (a Poisson process)
    #[arg(long, value_enum, default_value = "constant", requires = "arrival_rate")]
    arrivals: ArrivalsArg,
    /// With --arrival-rate: most streams open at once; arrivals beyond it are dropped and counted
    #[arg(long, default_value_t = 10_000, requires = "arrival_rate")]
    max_streams: usize,
    /// Seed for Poisson arrivals, --stream-duration ranges and template randomness
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run share K of a run split over N processes (K from 0): users, -n, stage targets, --connect-rate and arrivals
    /// are split so the N together are the one run; 'auto' takes K from JOB_COMPLETION_INDEX (with --shards N)
    #[arg(long, value_name = "K/N|auto")]
    shard: Option<String>,
    /// How many shards 'auto' is one of
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// Start the run's clock at TIME, once ready (+30s, Unix seconds, or RFC 3339), so several shards start together
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
    /// Give up on a TCP connect after this long
    #[arg(long, default_value = "10s", value_parser = units::parse_duration)]
    connect_timeout: Duration,
    /// Fail a stream whose response head has not arrived this long after its request started (writing included)
    #[arg(long, value_parser = units::parse_duration)]
    header_timeout: Option<Duration>,
    /// Fail a stream whose first event has not arrived this long after the response head
    #[arg(long, value_parser = units::parse_duration)]
    first_event_timeout: Option<Duration>,
    /// Fail a stream with no event for this long (comment-only heartbeats do not count)
    #[arg(long, value_parser = units::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Fail a stream that moves no byte at all, in or out, for this long (a half-open connection, an unread request)
    #[arg(long, value_parser = units::parse_duration)]
    byte_idle_timeout: Option<Duration>,
    /// Count gaps between events longer than this as stalls
    #[arg(long, value_parser = units::parse_duration)]
    stall_threshold: Option<Duration>,
    /// Close each stream after this long (or a length drawn from LOW..HIGH): a completed stream
    #[arg(long, value_parser = units::parse_duration_range)]
    stream_duration: Option<(Duration, Duration)>,
    /// Reconnect like a browser: wait the server's retry: (or --retry-default), send Last-Event-ID
    #[arg(long)]
    reconnect: bool,
    /// Reconnection delay when the server sent no retry:
    #[arg(long, default_value = "3s", value_parser = units::parse_duration)]
    retry_default: Duration,
    /// Check that numeric event ids are consecutive per virtual user (across reconnects): count lost and duplicated events
    #[arg(long)]
    verify_seq: bool,
    /// Where each event says when it was sent, for its delivery lag: 'stamp' (ssebench serve's: the first word of
    /// data), 'id', or a JSON path into data ('$.created', '$.meta.ts')
    #[arg(long, value_name = "SOURCE")]
    send_time: Option<String>,
    /// The unit of --send-time's numbers: s, ms, us, ns, or auto (told apart by magnitude)
    #[arg(long, default_value = "auto", value_name = "UNIT")]
    send_time_unit: String,
    /// Follow up to N redirects (301, 302, 303, 307, 308) per stream, as a browser does; 0 follows none (an http_3xx
    /// failure)
    #[arg(long, default_value_t = crate::redirect::DEFAULT_MAX_REDIRECTS, value_name = "N")]
    max_redirects: u16,
    /// Objective judged at the end, e.g. 'first_event.p99<500ms', 'success_rate>=99%' (repeatable); a failure exits 1
    #[arg(long = "slo", value_parser = Slo::parse)]
    slos: Vec<Slo>,
    /// HTTP method [default: GET, or POST with --openai]
    #[arg(short = 'm', long)]
    method: Option<String>,
    /// Extra request header, 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_parser = flags::parse_header)]
    headers: Vec<(String, String)>,
    /// Request body: inline text, or @FILE to read it from a file
    #[arg(long)]
    body: Option<String>,
    /// Rows for {{field}} placeholders in headers, path and body: a .csv (with a header row) or .jsonl file
    #[arg(long)]
    data: Option<PathBuf>,
    /// With --data: each virtual user keeps one row (vu), or each request takes the next row (request)
    #[arg(long, value_enum, default_value = "vu", requires = "data")]
    data_mode: DataModeArg,
    /// Largest event (data and partial line) a stream may buffer; larger is a failure
    #[arg(long, default_value = "1MiB", value_parser = units::parse_size)]
    max_event_size: usize,
    /// Ask for compressed streams as browsers do (Accept-Encoding: gzip, deflate, br); compressed answers are decoded either way
    #[arg(long)]
    compressed: bool,
    /// Also write the report as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page (tables and charts over time; opens offline)
    #[arg(long)]
    html: Option<PathBuf>,
    /// Length of each entry of the report's timeline (the run over time)
    #[arg(long, default_value = "1s", value_parser = units::parse_duration)]
    report_interval: Duration,
    /// Also write the timeline as CSV to this file (one row per --report-interval)
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Also write each --report-interval's latency histograms (connect, headers, first_event, gap; ttft, itl with
    /// --openai) to this file as an HdrHistogram interval log, tagged by name (two significant digits)
    #[arg(long)]
    hdr_log: Option<PathBuf>,
    /// Serve the run's figures at http://ADDR/metrics in the Prometheus text format, updated every
    /// --report-interval (counters, gauges and latency histograms; see the README)
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// With --metrics-addr: how long /metrics stays up after the report, so the last scrape sees the final figures
    #[arg(long, default_value = "10s", value_parser = units::parse_duration, requires = "metrics_addr")]
    metrics_linger: Duration,
    /// The `run` label of every metric series [default: HOST-PID-UNIXTIME]
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// Also write one JSON line per ended stream to this file (JSON Lines; see the README for the fields)
    #[arg(long)]
    streams_log: Option<PathBuf>,
    /// No live view on stderr (by default: redrawn every --report-interval on a terminal, a line every 10 s in a log)
    #[arg(short = 'q', long)]
    quiet: bool,
    #[command(flatten)]
    llm: LlmArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Args)]
struct TlsArgs {
    /// https://: also trust the CA certificates in this PEM file (added to the system roots)
    #[arg(long, conflicts_with = "insecure")]
    cacert: Option<PathBuf>,
    /// https://: do not verify the server's certificate (the report says so)
    #[arg(short = 'k', long)]
    insecure: bool,
    /// https://: present this client certificate chain (PEM), for servers that require one (mTLS)
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// https://: the private key (PEM) of --cert
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// https://: a user's reconnect resumes its TLS session (on), or every connection makes a full handshake (off)
    #[arg(long, value_enum, default_value = "on")]
    tls_resume: OnOffArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOffArg {
    On,
    Off,
}

impl TlsArgs {
    /// The client TLS config when a target is `https://`. A TLS flag without one is a mistake worth naming.
    fn client<'t>(
        &self,
        mut targets: impl Iterator<Item = &'t Target>,
    ) -> Result<Option<crate::tls::TlsClient>, ConfigError> {
        if !targets.any(|t| t.tls_name.is_some()) {
            let given = [
                (self.cacert.is_some(), "--cacert"),
                (self.insecure, "--insecure"),
                (self.cert.is_some(), "--cert"),
                (self.tls_resume == OnOffArg::Off, "--tls-resume"),
            ];
            return match given.iter().find(|(set, _)| *set) {
                Some((_, flag)) => Err(ConfigError(format!("{flag} applies to https:// URLs, and none was given"))),
                None => Ok(None),
            };
        }
        let opts = crate::tls::ClientOptions {
            cacert: self.cacert.clone(),
            insecure: self.insecure,
            cert: self.cert.clone(),
            key: self.key.clone(),
            resume: self.tls_resume == OnOffArg::On,
        };
        crate::tls::TlsClient::new(&opts).map(Some).map_err(ConfigError)
    }
}

#[derive(Debug, Args)]
struct LlmArgs {
    /// LLM mode: POST OpenAI-compatible streaming requests (to URL, or /v1/chat/completions or /v1/completions under
    /// a base URL) and report tokens: TTFT, ITL, TPOT, tokens/s
    #[arg(long, value_enum)]
    openai: Option<OpenAiArg>,
    /// The model each request names
    #[arg(long, default_value = crate::server::DEFAULT_MODEL_NAME, requires = "openai")]
    model: String,
    /// max_tokens of each request [default: none, the server decides]
    #[arg(long, requires = "openai")]
    max_tokens: Option<u64>,
    /// Extra JSON fields for every request body, e.g. '{"temperature":0,"ignore_eos":true}', or @FILE
    #[arg(long, requires = "openai")]
    extra_body: Option<String>,
    /// API key sent as 'Authorization: Bearer KEY' [default: $OPENAI_API_KEY]; never printed
    #[arg(long, requires = "openai")]
    api_key: Option<String>,
    /// Prompts, one JSON object per line: {"messages": [...]} or {"prompt": "..."}, optional "max_tokens"
    #[arg(long, requires = "openai", conflicts_with_all = ["prompt_tokens", "scenario"])]
    prompts: Option<PathBuf>,
    /// Synthetic prompts of N words, or drawn from A..B per request (seeded) [default: 128]
    #[arg(long, requires = "openai", value_parser = prompt::parse_token_range, conflicts_with = "scenario")]
    prompt_tokens: Option<(u64, u64)>,
    /// A user journey (TOML): optional HTTP steps (a login), then a multi-turn conversation
    #[arg(long, requires = "openai")]
    scenario: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OpenAiArg {
    Chat,
    Completions,
}

impl LlmArgs {
    /// The LLM config, and the headers the requests need (`Authorization` from the key, a JSON `Content-Type`).
    fn config(self, headers: &mut Vec<(String, String)>) -> Result<Option<LlmConfig>, ConfigError> {
        let Some(api) = self.openai else { return Ok(None) };
        let api = match api {
            OpenAiArg::Chat => Api::Chat,
            OpenAiArg::Completions => Api::Completions,
        };
        let has = |headers: &[(String, String)], name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let scenario = match &self.scenario {
            None => None,
            Some(path) => Some(Scenario::load(path).map_err(ConfigError)?),
        };
        let prompts = match (&self.prompts, self.prompt_tokens, &scenario) {
            (_, _, Some(scenario)) => match &scenario.conversation.user {
                UserTurns::Messages(texts) => PromptSource::from_texts(texts, api),
                UserTurns::PromptTokens { low, high } => Ok(PromptSource::synthetic(*low, *high)),
            }
            .map_err(|e| ConfigError(format!("--scenario: {e}")))?,
            (Some(path), _, None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("--prompts {}: cannot read: {e}", path.display())))?;
                PromptSource::from_jsonl(&text, api)
                    .map_err(|e| ConfigError(format!("--prompts {}: {e}", path.display())))?
            }
            (None, Some((low, high)), None) => PromptSource::synthetic(low, high),
            (None, None, None) => PromptSource::synthetic(DEFAULT_PROMPT_TOKENS, DEFAULT_PROMPT_TOKENS),
        };
        if let Some(scenario) = &scenario {
            for (name, value) in &scenario.conversation.headers {
                headers.push((name.clone(), value.clone()));
            }
        }
        let key = self.api_key.or_else(|| std::env::var("OPENAI_API_KEY").ok()).filter(|k| !k.is_empty());
        if let Some(key) = key
            && !has(headers, "authorization")
        {
            if key.bytes().any(|b| b.is_ascii_control()) {
                return Err(ConfigError("--api-key has control characters".into()));
            }
            headers.push(("Authorization".into(), format!("Bearer {key}")));
        }
        if !has(headers, "content-type") {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let extra_body = match self.extra_body {
            Some(text) => Some(match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("--extra-body @{path}: cannot read the file: {e}")))?,
                None => text,
            }),
            None => None,
        };
        let mut llm = LlmConfig {
            api,
            model: self.model,
            max_tokens: self.max_tokens,
            extra_body,
            prompts: Arc::new(prompts),
            scenario,
            step_targets: Vec::new(),
        };
        llm.resolve_steps()?;
        Ok(Some(llm))
    }
}

/// Words in a synthetic prompt when neither --prompts nor --prompt-tokens says.
const DEFAULT_PROMPT_TOKENS: u64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DataModeArg {
    Vu,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ArrivalsArg {
    Constant,
    Poisson,
}

/// The `--stages` value, a newtype for the same reason as `BindList`.
#[derive(Debug, Clone)]
struct StageList(Vec<config::Stage>);

fn parse_stages(s: &str) -> Result<StageList, String> {
    flags::parse_stages(s).map(StageList)
}

/// One `--bind` value. A newtype, because clap reads `Option<Vec<T>>` as repeated values of T.
#[derive(Debug, Clone)]
struct BindList(Vec<IpAddr>);

fn parse_bind(s: &str) -> Result<BindList, String> {
    flags::parse_bind_list(s).map(BindList)
}

/// `--run-id`'s default: `HOST-PID-UNIXTIME`, readable and unique per process (two generators on one host differ by
/// their pid, two hosts by their name), in characters that need no escaping anywhere (a PromQL regex aside from `.`).
fn generated_run_id() -> String {
    let host: String = crate::sys::hostname()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '_' })
        .collect();
    let unix_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let host = if host.is_empty() { "ssebench".to_string() } else { host };
    format!("{host}-{}-{unix_s}", std::process::id())
}

pub(crate) fn run_config(args: RunArgs) -> Result<RunConfig, ConfigError> {
    let body = match args.body.as_deref() {
        None => Vec::new(),
        Some(text) => match text.strip_prefix('@') {
            Some(path) => {
                std::fs::read(path).map_err(|e| ConfigError(format!("--body @{path}: cannot read the file: {e}")))?
            }
            None => text.as_bytes().to_vec(),
        },
    };
    // Without -n the run needs an end; with -n it ends when the streams are done.
    let duration = match (args.duration, args.streams) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    let targets = match args.target_addrs.as_slice() {
        [] => args.urls.iter().map(|u| Target::parse(u)).collect::<Result<Vec<_>, _>>()?,
        addrs => match args.urls.as_slice() {
            [url] => Target::with_addrs(url, addrs)?,
            _ => return Err(ConfigError("--target-addrs takes one URL (for its Host and path), not several".into())),
        },
    };
    let stages = args.stages.map(|s| s.0).unwrap_or_default();
    let arrivals = args.arrival_rate.map(|rate_per_s| Arrivals {
        rate_per_s,
        poisson: args.arrivals == ArrivalsArg::Poisson,
        max_streams: args.max_streams,
    });
    // Stages and arrivals size the run themselves: the most streams open at once, and (stages) its length.
    let (connections, duration) = match (&arrivals, stages.iter().map(|s| s.streams).max()) {
        (Some(arrivals), _) => (arrivals.max_streams, duration),
        (None, Some(most)) => (most, None),
        (None, None) => (args.connections, duration),
    };
    let mut headers = args.headers;
    let llm = args.llm.config(&mut headers)?;
    let method = match (&args.method, &llm) {
        (Some(method), _) => method.to_ascii_uppercase(),
        (None, Some(_)) => "POST".to_string(),
        (None, None) => "GET".to_string(),
    };
    let mut cfg = RunConfig {
        targets,
        bind_addrs: args.bind.map(|b| b.0).unwrap_or_default(),
        connections,
        duration,
        streams_limit: args.streams,
        connect_rate_per_s: args.connect_rate,
        stages,
        arrivals,
        seed: args.seed,
        start_at_unix_us: match &args.start_at {
            None => None,
            Some(text) => Some(
                units::parse_time_unix_us(text, units::unix_micros())
                    .map_err(|e| ConfigError(format!("--start-at {e}")))?,
            ),
        },
        shard: match &args.shard {
            None if args.shards.is_some() => return Err(ConfigError("--shards goes with --shard auto".into())),
            None => None,
            Some(text) => {
                let env = std::env::var("JOB_COMPLETION_INDEX").ok();
                Some(config::ShardOf::parse(text, args.shards, env.as_deref()).map_err(ConfigError)?)
            }
        },
        connect_timeout: args.connect_timeout,
        header_timeout: args.header_timeout,
        first_event_timeout: args.first_event_timeout,
        idle_timeout: args.idle_timeout,
        byte_idle_timeout: args.byte_idle_timeout,
        stall_threshold: args.stall_threshold,
        stream_duration: args.stream_duration,
        slos: args.slos,
        reconnect: args.reconnect,
        retry_default: args.retry_default,
        verify_seq: args.verify_seq,
        send_time: match &args.send_time {
            None if args.send_time_unit != "auto" => {
                return Err(ConfigError("--send-time-unit applies to --send-time, which was not given".into()));
            }
            None => None,
            Some(source) => Some(Arc::new(SendTime::parse(source, &args.send_time_unit).map_err(ConfigError)?)),
        },
        max_redirects: args.max_redirects,
        method,
        headers,
        body: Arc::new(body),
        data: match &args.data {
            None => None,
            Some(path) => Some(Arc::new(DataSet::load(path).map_err(|e| ConfigError(format!("--data: {e}")))?)),
        },
        data_mode: match args.data_mode {
            DataModeArg::Vu => DataMode::Vu,
            DataModeArg::Request => DataMode::Request,
        },
        max_event_size_bytes: args.max_event_size,
        compressed: args.compressed,
        threads: args.engine.threads(),
        driver: args.engine.driver.into(),
        pin: args.engine.pin.into(),
        json_path: args.json,
        html_path: args.html,
        command_line: Vec::new(),
        report_interval: args.report_interval,
        csv_path: args.csv,
        hdr_log_path: args.hdr_log,
        metrics_addr: args.metrics_addr,
        metrics_linger: args.metrics_linger,
        run_id: args.run_id.unwrap_or_else(generated_run_id),
        streams_log_path: args.streams_log,
        live: !args.quiet,
        llm,
        tls: None,
    };
    cfg.validate()?;
    let step_targets = cfg.llm.as_ref().map_or(&[][..], |l| &l.step_targets[..]);
    cfg.tls = args.tls.client(cfg.targets.iter().chain(step_targets.iter().flatten()))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, ParseError, parse_from};

    fn run(args: &[&str]) -> Result<RunConfig, ConfigError> {
        let argv = ["ssebench", "run"].iter().chain(args).copied();
        match parse_from(argv) {
            Ok(Command::Run(cfg)) => Ok(*cfg),
            Ok(other) => panic!("{other:?}"),
            Err(ParseError::Config(err)) => Err(err),
            Err(other) => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn pin_is_auto_unless_asked_and_a_wrong_value_is_refused() {
        assert_eq!(run(&["http://127.0.0.1:9/"]).unwrap().pin, crate::config::PinChoice::Auto);
        assert_eq!(run(&["http://127.0.0.1:9/", "--pin", "always"]).unwrap().pin, crate::config::PinChoice::Always);
        assert_eq!(run(&["http://127.0.0.1:9/", "--pin", "never"]).unwrap().pin, crate::config::PinChoice::Never);
        let argv = ["ssebench", "run", "http://127.0.0.1:9/", "--pin", "sometimes"];
        match parse_from(argv) {
            Err(ParseError::Usage(msg)) => assert!(msg.contains("--pin"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_flags_reach_the_config() {
        let cfg = run(&[
            "http://127.0.0.1:9/x",
            "-c",
            "7",
            "-d",
            "2s",
            "-n",
            "30",
            "-m",
            "post",
            "-H",
            "A: 1",
            "-H",
            "B: 2",
            "--body",
            "hi",
            "--connect-rate",
            "50",
            "--max-event-size",
            "4KiB",
            "-t",
            "1",
            "--bind",
            "127.0.0.1-127.0.0.2",
        ])
        .unwrap();
        assert_eq!(cfg.connections, 7);
        assert_eq!(cfg.duration, Some(Duration::from_secs(2)));
        assert_eq!(cfg.streams_limit, Some(30));
        assert_eq!(cfg.method, "POST");
        assert_eq!(cfg.headers, vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert_eq!(cfg.body[..], b"hi"[..]);
        assert_eq!(cfg.connect_rate_per_s, Some(50.0));
        assert_eq!(cfg.max_event_size_bytes, 4096);
        assert_eq!(cfg.threads, 1);
        assert_eq!(cfg.bind_addrs.len(), 2);
        assert_eq!(cfg.max_redirects, 20, "Fetch's limit by default");
        assert_eq!(run(&["http://127.0.0.1:9/", "--max-redirects", "0"]).unwrap().max_redirects, 0);
        assert!(!cfg.compressed, "no Accept-Encoding unless asked, as curl");
        assert!(run(&["http://127.0.0.1:9/x", "--compressed"]).unwrap().compressed);
    }

    #[test]
    fn metrics_flags_reach_the_config() {
        let cfg = run(&["http://127.0.0.1:9/", "--metrics-addr", "127.0.0.1:9091", "--metrics-linger", "3s"]).unwrap();
        assert_eq!(cfg.metrics_addr, Some("127.0.0.1:9091".parse().unwrap()));
        assert_eq!(cfg.metrics_linger, Duration::from_secs(3));
        let (host_pid, unix_s) = cfg.run_id.rsplit_once('-').expect("HOST-PID-UNIXTIME");
        assert!(unix_s.parse::<u64>().is_ok() && host_pid.ends_with(&format!("-{}", std::process::id())), "{cfg:?}");
        assert!(cfg.run_id.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)), "{}", cfg.run_id);
        let cfg = run(&["http://127.0.0.1:9/", "--run-id", "eu-1"]).unwrap();
        assert_eq!(
            (cfg.run_id.as_str(), cfg.metrics_addr, cfg.metrics_linger),
            ("eu-1", None, Duration::from_secs(10))
        );
        assert!(run(&["http://127.0.0.1:9/", "--run-id", ""]).is_err());
        let argv = |extra: [&'static str; 2]| ["ssebench", "run", "http://127.0.0.1:9/"].into_iter().chain(extra);
        assert!(parse_from(argv(["--metrics-addr", "localhost"])).is_err(), "an address, not a name");
        assert!(parse_from(argv(["--metrics-linger", "1s"])).is_err(), "a linger without an endpoint");
    }

    #[test]
    fn load_shapes_reach_the_config() {
        let cfg = run(&["http://127.0.0.1:9/", "--stages", "10:1s,30:2s", "--connect-rate", "5"]).unwrap();
        assert_eq!(cfg.stages.iter().map(|s| s.streams).collect::<Vec<_>>(), vec![10, 30]);
        assert_eq!((cfg.connections, cfg.duration), (30, None));
        let cfg = run(&["http://127.0.0.1:9/", "--arrival-rate", "50", "--arrivals", "poisson", "--max-streams", "7"])
            .unwrap();
        let arrivals = cfg.arrivals.unwrap();
        assert_eq!((arrivals.rate_per_s, arrivals.poisson, arrivals.max_streams), (50.0, true, 7));
        assert_eq!(cfg.connections, 7);
        assert_eq!(run(&["http://127.0.0.1:9/", "--arrival-rate", "5"]).unwrap().arrivals.unwrap().max_streams, 10_000);
        let dir = std::env::temp_dir().join(format!("ssebench-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let users = dir.join("users.csv");
        std::fs::write(&users, "token\na\nb\n").unwrap();
        let cfg =
            run(&["http://127.0.0.1:9/", "-H", "Authorization: Bearer {{token}}", "--data", users.to_str().unwrap()])
                .unwrap();
        assert_eq!(cfg.data.as_ref().map(|d| d.rows()), Some(2));
        // Templates are built (once) by the engine before anything connects; a bad one is a config error there.
        let build = |cfg: RunConfig| crate::requests::build(&cfg, &|_| None).map(|_| ());
        let missing =
            build(run(&["http://127.0.0.1:9/", "-H", "X: {{nope}}", "--data", users.to_str().unwrap()]).unwrap())
                .unwrap_err();
        assert!(missing.0.contains("nope"), "{}", missing.0);
        let unused = build(run(&["http://127.0.0.1:9/", "--data", users.to_str().unwrap()]).unwrap()).unwrap_err();
        assert!(unused.0.contains("--data"), "{}", unused.0);
        assert!(build(run(&["http://127.0.0.1:9/", "--body", "{{rand_int 5 1}}"]).unwrap()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn target_addrs_keep_the_urls_host_and_path() {
        let cfg = run(&["http://svc:8080/sse", "--target-addrs", "127.0.0.1:1,127.0.0.2:2"]).unwrap();
        let got: Vec<(String, String, String)> =
            cfg.targets.iter().map(|t| (t.addr.to_string(), t.host_header.clone(), t.path.clone())).collect();
        assert_eq!(
            got,
            [
                ("127.0.0.1:1".into(), "svc:8080".into(), "/sse".into()),
                ("127.0.0.2:2".into(), "svc:8080".into(), "/sse".into())
            ]
        );
        assert!(run(&["http://127.0.0.1:1/", "http://127.0.0.1:2/", "--target-addrs", "127.0.0.1:3"]).is_err());
    }

    #[test]
    fn duration_defaults_unless_streams_are_counted() {
        assert_eq!(run(&["http://127.0.0.1:9/"]).unwrap().duration, Some(Duration::from_secs(10)));
        assert_eq!(run(&["http://127.0.0.1:9/", "-n", "5"]).unwrap().duration, None);
    }

    #[test]
    fn bad_values_name_the_problem() {
        let e = run(&["http://127.0.0.1:9/", "-c", "0"]).unwrap_err();
        assert!(e.0.contains("--connections"), "{e}");
        let e = run(&["http://127.0.0.1:9/", "--body", "@/nonexistent/file"]).unwrap_err();
        assert!(e.0.contains("--body"), "{e}");
        let e = run(&["ftp://127.0.0.1/"]).unwrap_err();
        assert!(e.0.contains("http:// or https://"), "{e}");
        let e = run(&["http://127.0.0.1/", "-k"]).unwrap_err();
        assert!(e.0.contains("--insecure applies to https://"), "{e}");
        let cfg = run(&["https://127.0.0.1/", "-k", "--tls-resume", "off"]).unwrap();
        let tls = cfg.tls.expect("an https:// URL gets a TLS config");
        assert!(!tls.verify && !tls.resume);
    }
}
