//! Command-line parsing: clap types live here and stop here; everything past `parse` sees checked configs.
//! `run`'s flags and their conversion into a `RunConfig` are in `cli::run`; `serve`, `demo`, `doctor`, `merge` and
//! `report` here.

mod run;

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cli::run::{RunArgs, run_config};
use crate::config::{ConfigError, DriverChoice, PinChoice, RunConfig};
use crate::limits;
use crate::server::openai::ModelShape;
use crate::server::{AccelBuffering, Pauses, ServeConfig};
use crate::slo::Slo;
use crate::units;

#[derive(Debug, Parser)]
#[command(name = "ssebench", version, about = "Load generator for Server-Sent Events streams")]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Open SSE streams against URL and report latency, gaps, throughput and failures.
    Run(Box<RunArgs>),
    /// Serve SSE streams for load tests (the built-in target server).
    Serve(Box<ServeArgs>),
    /// Start the built-in server on a loopback port and run a short load test against it.
    Demo(DemoArgs),
    /// Check the host's limits (descriptors, ports, kernel memory, io_uring) for a target stream count.
    Doctor(DoctorArgs),
    /// Merge saved `--json` reports exactly (histograms added, counters summed) and judge SLOs over the sum.
    Merge(MergeArgs),
    /// Print the text report of a saved (or merged) `--json` report again.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The `--json` reports to merge (runs against the same target at the same time)
    #[arg(required = true, num_args = 1..)]
    reports: Vec<PathBuf>,
    /// Also write the merged report as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the merged report as one self-contained HTML page
    #[arg(long)]
    html: Option<PathBuf>,
    /// An objective to judge over the merged figures, as `run --slo` [default: the ones the reports recorded]
    #[arg(long = "slo", value_parser = Slo::parse)]
    slos: Vec<Slo>,
    /// Merge reports of different targets or settings anyway
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// A report written by `run --json` or `merge --json`
    report: PathBuf,
    /// Also write it as one self-contained HTML page (tables and charts; opens offline)
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DoctorArgs {
    /// Concurrent streams the host should hold
    #[arg(short = 'c', long = "connections", default_value_t = 100_000)]
    connections: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DriverArg {
    Auto,
    #[value(name = "io_uring", alias = "io-uring", alias = "uring")]
    IoUring,
    Epoll,
}

impl From<DriverArg> for DriverChoice {
    fn from(d: DriverArg) -> DriverChoice {
        match d {
            DriverArg::Auto => DriverChoice::Auto,
            DriverArg::IoUring => DriverChoice::IoUring,
            DriverArg::Epoll => DriverChoice::Epoll,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PinArg {
    Auto,
    Always,
    Never,
}

impl From<PinArg> for PinChoice {
    fn from(p: PinArg) -> PinChoice {
        match p {
            PinArg::Auto => PinChoice::Auto,
            PinArg::Always => PinChoice::Always,
            PinArg::Never => PinChoice::Never,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct EngineArgs {
    /// Worker threads, one runtime each [default: every available core]
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// IO driver. auto: for run, epoll (it reads many streams for less CPU); for serve, io_uring where usable, else epoll
    #[arg(long, value_enum, default_value = "auto")]
    driver: DriverArg,
    /// Pin each worker thread to its own core. auto: for run, pinned unless every target is on loopback (a server
    /// on the same cores, which pinned workers contend with); for serve, pinned
    #[arg(long, value_enum, default_value = "auto")]
    pin: PinArg,
}

impl EngineArgs {
    pub(crate) fn threads(&self) -> usize {
        self.threads.unwrap_or_else(limits::available_cores)
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one); repeat it, or give a comma list, to listen on several
    #[arg(long = "addr", default_value = "127.0.0.1:8080", value_delimiter = ',')]
    addrs: Vec<SocketAddr>,
    #[command(flatten)]
    stream: StreamShapeArgs,
    /// Serve this file verbatim (a whole HTTP response: status line, headers, body) to every request
    #[arg(long)]
    replay: Option<PathBuf>,
    /// With --replay: write the file in pieces of this many bytes
    #[arg(long, default_value = "64KiB", value_parser = units::parse_size)]
    replay_write_size: usize,
    /// With --replay: pause between pieces, so clients see them in separate reads
    #[arg(long, default_value = "0s", value_parser = units::parse_duration)]
    replay_pause: Duration,
    /// Answer /v1/chat/completions and /v1/completions (stream: true) as a simulated model server
    #[arg(long, conflicts_with = "replay")]
    openai: bool,
    /// With --openai: generated tokens per second per answer
    #[arg(long, default_value_t = 50.0, requires = "openai")]
    tokens_per_s: f64,
    /// With --openai: tokens per content chunk
    #[arg(long, default_value_t = 1, requires = "openai")]
    tokens_per_chunk: u32,
    /// With --openai: time to first token per prompt token (added to --first-delay); one token per prompt word
    #[arg(long, default_value_t = 0, requires = "openai")]
    prefill_us_per_token: u64,
    /// With --openai: tokens an answer has when max_tokens does not cut it short
    #[arg(long, default_value_t = 128, requires = "openai")]
    output_tokens: u64,
    /// With --openai: the served model's name, listed by GET /v1/models
    #[arg(long, default_value = crate::server::DEFAULT_MODEL_NAME, requires = "openai")]
    model_name: String,
    /// Serve HTTPS with this certificate chain (PEM)
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With --tls-cert: require a client certificate signed by a CA in this PEM file (mTLS)
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// The X-Accel-Buffering header of every stream's head: no (nginx passes events at once), yes (nginx may
    /// buffer), omit (no header: the proxy's own settings decide)
    #[arg(long, value_enum, default_value = "no")]
    x_accel_buffering: AccelBufferingArg,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AccelBufferingArg {
    No,
    Yes,
    Omit,
}

impl From<AccelBufferingArg> for AccelBuffering {
    fn from(a: AccelBufferingArg) -> AccelBuffering {
        match a {
            AccelBufferingArg::No => AccelBuffering::No,
            AccelBufferingArg::Yes => AccelBuffering::Yes,
            AccelBufferingArg::Omit => AccelBuffering::Omit,
        }
    }
}

/// The shape of the streams the built-in server generates.
#[derive(Debug, Args)]
struct StreamShapeArgs {
    /// Events per stream (0: endless)
    #[arg(long, default_value_t = 100)]
    events: u64,
    /// Time between events
    #[arg(long, default_value = "100ms", value_parser = units::parse_duration)]
    interval: Duration,
    /// Bytes in each event's data value (starts with the send time in Unix µs)
    #[arg(long, default_value = "100", value_parser = units::parse_size)]
    size: usize,
    /// Delay before the first event (simulated time to first token)
    #[arg(long, default_value = "0s", value_parser = units::parse_duration)]
    first_delay: Duration,
    /// Send each event up to this much before or after its slot
    #[arg(long, default_value = "0s", value_parser = units::parse_duration)]
    jitter: Duration,
    /// Cut each connection after this many events, mid-stream (clients reconnect with Last-Event-ID)
    #[arg(long)]
    disconnect_after: Option<u64>,
    /// After every N events of a stream, stay silent for --pause (generated events; not --openai or --replay)
    #[arg(long, value_name = "N", requires = "pause", conflicts_with_all = ["openai", "replay"])]
    pause_every: Option<u64>,
    /// With --pause-every: how long each pause lasts; the events after it come that much later
    #[arg(long, requires = "pause_every", value_parser = units::parse_duration)]
    pause: Option<Duration>,
    /// With --pause-every: send an SSE comment (`: heartbeat`) every T while a stream is paused, and only then
    #[arg(long, requires = "pause_every", value_parser = units::parse_duration)]
    heartbeat: Option<Duration>,
}

impl StreamShapeArgs {
    /// `--pause-every`, `--pause` and `--heartbeat` as one checked value (clap has already paired them).
    fn pauses(&self) -> Result<Option<Pauses>, ConfigError> {
        let (Some(every), Some(pause)) = (self.pause_every, self.pause) else { return Ok(None) };
        let every_events =
            NonZeroU64::new(every).ok_or_else(|| ConfigError("--pause-every must be at least 1 event".into()))?;
        if pause.is_zero() {
            return Err(ConfigError("--pause must be longer than 0s".into()));
        }
        if self.heartbeat.is_some_and(|h| h.is_zero()) {
            return Err(ConfigError("--heartbeat must be longer than 0s".into()));
        }
        Ok(Some(Pauses { every_events, pause, heartbeat: self.heartbeat }))
    }
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// How long the demo load test runs
    #[arg(short = 'd', long, default_value = "5s", value_parser = units::parse_duration)]
    duration: Duration,
    /// Concurrent streams
    #[arg(short = 'c', long = "connections", default_value_t = 200)]
    connections: usize,
    /// Also write the report as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Serve a simulated model and run chat completions against it: the LLM report (TTFT, ITL, tokens)
    #[arg(long)]
    openai: bool,
    /// No live view on stderr
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// What `main` runs, with checked configuration.
#[derive(Debug)]
pub enum Command {
    Run(Box<RunConfig>),
    Serve(ServeConfig),
    Demo(DemoConfig),
    /// Inspect the host for this many concurrent streams.
    Doctor {
        streams: u64,
    },
    Merge(MergeConfig),
    /// Print this saved report again (and write it as HTML to `html_path`).
    Report {
        path: PathBuf,
        html_path: Option<PathBuf>,
    },
}

/// `merge`'s inputs, output and objectives.
#[derive(Debug, Clone)]
pub struct MergeConfig {
    pub reports: Vec<PathBuf>,
    pub json_path: Option<PathBuf>,
    pub html_path: Option<PathBuf>,
    /// As typed, for the merged report (`config::redact_argv` hides its secrets).
    pub command_line: Vec<String>,
    /// Judged over the merged figures; empty: the ones the reports recorded.
    pub slos: Vec<Slo>,
    /// Merge despite a different target or setting.
    pub force: bool,
}

/// The demo's own knobs; the rest of its set-up is fixed in `commands::demo`.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub duration: Duration,
    pub connections: usize,
    pub json_path: Option<PathBuf>,
    /// `demo --openai`: the LLM mode against the simulated model server.
    pub openai: bool,
    /// The live view on stderr (`--quiet` turns it off).
    pub live: bool,
}

/// Why the arguments make no command: what to print, where, and with which exit code. Values, never an exit:
/// `main` alone ends the process, and every rule here, clap's included, can be tested in-process.
#[derive(Debug)]
pub enum ParseError {
    /// `--help` or `--version`: clap's text, for stdout; exit 0.
    Info(String),
    /// A rule clap checks (an unknown flag, a bad value, flags that conflict): its message with the usage; exit 2.
    Usage(String),
    /// Values clap accepted that the checked config refuses; exit 2.
    Config(ConfigError),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Info(text) | ParseError::Usage(text) => f.write_str(text.trim_end()),
            ParseError::Config(err) => write!(f, "ssebench: {err}"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<ConfigError> for ParseError {
    fn from(err: ConfigError) -> ParseError {
        ParseError::Config(err)
    }
}

impl ParseError {
    /// The config's message, for callers that only expect config errors (tests); clap's text otherwise.
    pub fn message(&self) -> String {
        match self {
            ParseError::Config(err) => err.0.clone(),
            other => other.to_string(),
        }
    }
}

/// Parses the process arguments.
pub fn parse() -> Result<Command, ParseError> {
    parse_from(std::env::args_os())
}

pub fn parse_from<I, T>(args: I) -> Result<Command, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let command_line: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let cli = Cli::try_parse_from(args).map_err(|err| match err.use_stderr() {
        true => ParseError::Usage(err.render().to_string()),
        false => ParseError::Info(err.render().to_string()),
    })?;
    Ok(match cli.command {
        CliCommand::Run(args) => Command::Run(Box::new(RunConfig { command_line, ..run_config(*args)? })),
        CliCommand::Serve(args) => Command::Serve(serve_config(*args)?),
        CliCommand::Demo(args) => Command::Demo(DemoConfig {
            duration: args.duration,
            connections: args.connections,
            json_path: args.json,
            openai: args.openai,
            live: !args.quiet,
        }),
        CliCommand::Doctor(args) => Command::Doctor { streams: args.connections },
        CliCommand::Merge(args) => Command::Merge(MergeConfig {
            reports: args.reports,
            json_path: args.json,
            html_path: args.html,
            command_line,
            slos: args.slos,
            force: args.force,
        }),
        CliCommand::Report(args) => Command::Report { path: args.report, html_path: args.html },
    })
}

fn serve_config(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
    let replay = match &args.replay {
        None => None,
        Some(path) => Some(
            std::fs::read(path).map_err(|e| ConfigError(format!("--replay {}: cannot read: {e}", path.display())))?,
        ),
    };
    let threads = args.engine.threads();
    if threads == 0 {
        return Err(ConfigError("--threads must be at least 1".into()));
    }
    if args.openai && !(args.tokens_per_s.is_finite() && args.tokens_per_s > 0.0) {
        return Err(ConfigError("--tokens-per-s must be a positive number".into()));
    }
    if args.openai && args.tokens_per_chunk == 0 {
        return Err(ConfigError("--tokens-per-chunk must be at least 1".into()));
    }
    if args.replay_write_size == 0 {
        return Err(ConfigError("--replay-write-size must be at least 1 byte".into()));
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(crate::tls::server_config(cert, key, args.tls_client_ca.as_deref()).map_err(ConfigError)?)
        }
        _ => None,
    };
    let shape = args.stream;
    let pauses = shape.pauses()?;
    Ok(ServeConfig {
        addrs: args.addrs,
        threads,
        driver: args.engine.driver.into(),
        pin: args.engine.pin.into(),
        events: shape.events,
        interval: shape.interval,
        size_bytes: shape.size,
        first_delay: shape.first_delay,
        jitter: shape.jitter,
        replay,
        replay_write_bytes: args.replay_write_size,
        replay_pause: args.replay_pause,
        disconnect_after: shape.disconnect_after,
        pauses,
        accel_buffering: args.x_accel_buffering.into(),
        openai: args.openai.then_some(ModelShape {
            tokens_per_s: args.tokens_per_s,
            tokens_per_chunk: args.tokens_per_chunk,
            prefill_us_per_token: args.prefill_us_per_token,
            output_tokens: args.output_tokens,
        }),
        model_name: args.model_name,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules clap checks come back as values too: a conflict names the flags, `--help` is text for stdout.
    #[test]
    fn clap_rules_are_errors_not_exits() {
        let argv = ["ssebench", "run", "http://127.0.0.1:9/", "--stages", "10:1s", "-c", "5"];
        match parse_from(argv) {
            Err(ParseError::Usage(text)) => assert!(text.contains("--stages") && text.contains("Usage"), "{text}"),
            other => panic!("{other:?}"),
        }
        match parse_from(["ssebench", "run", "--no-such-flag"]) {
            Err(ParseError::Usage(text)) => assert!(text.contains("--no-such-flag"), "{text}"),
            other => panic!("{other:?}"),
        }
        match parse_from(["ssebench", "run", "--help"]) {
            Err(ParseError::Info(text)) => assert!(text.contains("--connections"), "{text}"),
            other => panic!("{other:?}"),
        }
        match parse_from(["ssebench", "run", "http://127.0.0.1:9/", "-d", "soon"]) {
            Err(ParseError::Usage(text)) => assert!(text.contains("'soon' is not a duration"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    fn serve(args: &[&str]) -> Result<ServeConfig, ParseError> {
        match parse_from(["ssebench", "serve"].iter().chain(args).copied()) {
            Ok(Command::Serve(cfg)) => Ok(cfg),
            Ok(other) => panic!("{other:?}"),
            Err(err) => Err(err),
        }
    }

    #[test]
    fn x_accel_buffering_defaults_to_no() {
        assert_eq!(serve(&[]).unwrap().accel_buffering, AccelBuffering::No);
        assert_eq!(serve(&["--x-accel-buffering", "yes"]).unwrap().accel_buffering, AccelBuffering::Yes);
        assert_eq!(serve(&["--x-accel-buffering", "omit"]).unwrap().accel_buffering, AccelBuffering::Omit);
        assert!(matches!(serve(&["--x-accel-buffering", "off"]), Err(ParseError::Usage(_))));
    }

    /// Each flag of a pair given alone is an error naming the one it needs; zero counts and times are refused.
    #[test]
    fn pause_flags_go_together() {
        let pauses = serve(&["--pause-every", "3", "--pause", "300ms", "--heartbeat", "100ms"]).unwrap().pauses;
        let every_events = NonZeroU64::new(3).unwrap();
        let heartbeat = Some(Duration::from_millis(100));
        assert_eq!(pauses, Some(Pauses { every_events, pause: Duration::from_millis(300), heartbeat }));
        assert_eq!(serve(&[]).unwrap().pauses, None);
        let usage = |args: &[&str], named: &str| match serve(args) {
            Err(ParseError::Usage(text)) => assert!(text.contains(named), "{args:?}: {text}"),
            other => panic!("{args:?}: {other:?}"),
        };
        usage(&["--pause-every", "3"], "--pause <PAUSE>");
        usage(&["--pause", "1s"], "--pause-every <N>");
        usage(&["--heartbeat", "1s"], "--pause-every <N>");
        usage(&["--pause-every", "3", "--pause", "1s", "--openai"], "--openai");
        let config = |args: &[&str]| serve(args).unwrap_err().message();
        assert_eq!(config(&["--pause-every", "0", "--pause", "1s"]), "--pause-every must be at least 1 event");
        assert_eq!(config(&["--pause-every", "2", "--pause", "0s"]), "--pause must be longer than 0s");
        let zero_beat = ["--pause-every", "2", "--pause", "1s", "--heartbeat", "0ms"];
        assert_eq!(config(&zero_beat), "--heartbeat must be longer than 0s");
    }
}
