//! What each subcommand does, from a checked config to an exit code: run, serve, demo, doctor, merge, report.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use crate::cli::{Command, DemoConfig, MergeConfig};
use crate::config::{self, LlmConfig, RunConfig, Target};
use crate::doctor;
use crate::engine::{self, EngineError};
use crate::limits;
use crate::live;
use crate::llm::prompt::{Api, PromptSource};
use crate::metrics::serve::MetricsServer;
use crate::report::{self, Report, merge, merge_timeline};
use crate::server::openai::ModelShape;
use crate::server::{self, ServeConfig};
use crate::signal;
use serde::Deserialize;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    /// `doctor` found a setting that needs a look.
    pub const WARNINGS: u8 = 1;
    /// `run`, `merge`, `report`: an `--slo` failed (the report says which).
    pub const SLO_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const CANNOT_START: u8 = 3;
    /// The run was stopped by Ctrl-C (its report was still printed), as shells report SIGINT.
    pub const INTERRUPTED: u8 = 130;
}

pub fn execute(command: Command) -> u8 {
    let result = match command {
        Command::Run(cfg) => {
            if let Err(err) = signal::install() {
                eprintln!("ssebench: Ctrl-C will not print a report: {err}");
            }
            // Whether the run was interrupted is decided before `--metrics-linger`: a Ctrl-C that only ends the
            // linger leaves the run's own exit code.
            match run(&cfg, 0, false) {
                Ok(end) if end.interrupted => return exit::INTERRUPTED,
                Ok(end) if !end.slos_pass => return exit::SLO_FAILED,
                Ok(_) => return exit::OK,
                Err(EngineError::Config(err)) => {
                    eprintln!("ssebench: {err}");
                    return exit::USAGE;
                }
                Err(err) => Err(err.to_string()),
            }
        }
        Command::Serve(cfg) => serve(&cfg),
        Command::Demo(cfg) => demo(&cfg).map(|_| ()),
        Command::Doctor { streams } => return doctor(streams),
        Command::Merge(cfg) => return merge(&cfg),
        Command::Report { path, html_path } => return reprint(&path, html_path.as_deref()),
    };
    match result {
        Ok(()) if signal::interrupted() => exit::INTERRUPTED,
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("ssebench: {message}");
            exit::CANNOT_START
        }
    }
}

/// Prints the host inspection; exit 1 when something needs a look.
fn doctor(streams: u64) -> u8 {
    let items = doctor::inspect(streams);
    if let Err(message) = print_stdout(&doctor::render(streams, &items)) {
        eprintln!("ssebench: {message}");
        return exit::CANNOT_START;
    }
    if items.iter().any(|i| i.status == doctor::Status::Warn) { exit::WARNINGS } else { exit::OK }
}

/// Reads a `--json` report, as a report and as the JSON it is (for what this ssebench's `Report` does not know, such
/// as another version's timeline). The file is the user's input, so what is wrong with it is a usage error.
fn read_report(path: &Path) -> Result<(Report, serde_json::Value), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let not_a_report = |e: serde_json::Error| format!("{}: not an ssebench JSON report: {e}", path.display());
    let json: serde_json::Value = serde_json::from_str(&text).map_err(not_a_report)?;
    let report = Report::deserialize(&json).map_err(not_a_report)?;
    Ok((report, json))
}

/// Merges the reports, prints the merged report, writes it as JSON if asked (with the merged timeline when every
/// report carries one); exits as `run` does.
fn merge(cfg: &MergeConfig) -> u8 {
    let merged = cfg.reports.iter().map(|p| read_report(p)).collect::<Result<Vec<_>, _>>().and_then(|read| {
        let (reports, json): (Vec<Report>, Vec<serde_json::Value>) = read.into_iter().unzip();
        let slos = merge::slos_of(&reports, &cfg.slos)?;
        let report = merge::merge(&reports, &slos, cfg.force).map_err(|e| e.to_string())?;
        Ok((report, merge_timeline::merge(&json)))
    });
    let (mut report, timeline) = match merged {
        Ok(merged) => merged,
        Err(message) => {
            eprintln!("ssebench: {message}");
            return exit::USAGE;
        }
    };
    report.command_line = (!cfg.command_line.is_empty()).then(|| config::redact_argv(&cfg.command_line));
    let printed = print_stdout(&report::render_text(&report));
    // The merged report as JSON: through a value when there is a timeline (keys then in alphabetical order): this
    // `Report` has no timeline to hold it. The HTML page is drawn from the same value.
    let json = match timeline {
        None => None,
        // Its start is the report's `started_at` already: the earliest of the reports', every one of which has one.
        Some((_, entries)) => {
            let mut json = serde_json::to_value(&report).expect("the report serializes");
            json["timeline"] = entries.into();
            Some(json)
        }
    };
    if let Some(path) = &cfg.json_path {
        let text = match &json {
            None => report.to_json(),
            Some(json) => serde_json::to_string_pretty(json).expect("the report serializes"),
        } + "\n";
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("ssebench: cannot write the JSON report to {}: {e}", path.display());
            return exit::CANNOT_START;
        }
    }
    if let Some(path) = &cfg.html_path {
        let json = json.unwrap_or_else(|| serde_json::to_value(&report).expect("the report serializes"));
        if let Err(message) = write_html(path, &report, &json) {
            eprintln!("ssebench: {message}");
            return exit::CANNOT_START;
        }
    }
    if let Err(message) = printed {
        eprintln!("ssebench: {message}");
        return exit::CANNOT_START;
    }
    if report.slos_pass() { exit::OK } else { exit::SLO_FAILED }
}

/// Prints a saved report as `run` printed it, and writes it as HTML if asked (from the file's own JSON, so what this
/// version's `Report` does not know still reaches the page); exits 1 when it recorded a failed `--slo`, as the run did.
fn reprint(path: &Path, html_path: Option<&Path>) -> u8 {
    let (report, json) = match read_report(path) {
        Ok(read) => read,
        Err(message) => {
            eprintln!("ssebench: {message}");
            return exit::USAGE;
        }
    };
    if let Some(Err(message)) = html_path.map(|path| write_html(path, &report, &json)) {
        eprintln!("ssebench: {message}");
        return exit::CANNOT_START;
    }
    if let Err(message) = print_stdout(&report::render_text(&report)) {
        eprintln!("ssebench: {message}");
        return exit::CANNOT_START;
    }
    if report.slos_pass() { exit::OK } else { exit::SLO_FAILED }
}

/// `--html`: the page of `report`, drawn from `json` (the report as `--json` writes it), into `path`.
fn write_html(path: &Path, report: &Report, json: &serde_json::Value) -> Result<(), String> {
    let page = report::html::render(report, json).map_err(|e| format!("cannot write the HTML report: {e}"))?;
    std::fs::write(path, page).map_err(|e| format!("cannot write the HTML report to {}: {e}", path.display()))
}

/// Runs the load test, prints the report and writes the JSON file if asked.
/// `in_process_server`: the demo's server shares the process, so its memory would be counted as
/// the generator's; the memory figures are left out then. With `--metrics-addr`, serves the metrics from before
/// the run starts until `--metrics-linger` after the report.
fn run(cfg: &RunConfig, first_core: usize, in_process_server: bool) -> Result<RunEnd, EngineError> {
    // Bound before anything connects: a port in use stops the run now (exit 3), not after it.
    let metrics = match cfg.metrics_addr {
        Some(addr) => {
            let server = MetricsServer::start(addr, String::new())
                .map_err(|e| EngineError::Start(format!("cannot serve --metrics-addr {addr}: {e}")))?;
            eprintln!("ssebench: metrics at http://{}/metrics (run=\"{}\")", server.addr, cfg.run_id);
            Some(server)
        }
        None => None,
    };
    let mut publish = |text: String| {
        if let Some(server) = &metrics {
            server.publish(text);
        }
    };
    let publish: Option<engine::MetricsSink> = metrics.as_ref().map(|_| &mut publish as engine::MetricsSink);
    let mut outcome = match cfg.live {
        true => {
            let mut view = LiveView::new(io::stderr().is_terminal());
            let outcome = engine::run_live(cfg, first_core, Some(&mut |end_us, line| view.show(end_us, line)), publish);
            view.finish();
            outcome?
        }
        false => engine::run_live(cfg, first_core, None, publish)?,
    };
    if in_process_server {
        outcome.memory = None;
    }
    let target = cfg.target_urls().join(", ");
    let mut report = Report::new(&target, &outcome, &cfg.slos);
    report.request = Some(report::RequestReport::of(cfg));
    report.command_line = (!cfg.command_line.is_empty()).then(|| config::redact_argv(&cfg.command_line));
    let printed = print_stdout(&report::render_text(&report));
    if let Some(path) = &cfg.json_path {
        std::fs::write(path, report.to_json() + "\n")
            .map_err(|e| EngineError::Start(format!("cannot write the JSON report to {}: {e}", path.display())))?;
    }
    if let Some(path) = &cfg.html_path {
        let json = serde_json::to_value(&report).expect("the report serializes");
        write_html(path, &report, &json).map_err(EngineError::Start)?;
    }
    if let Some(path) = &cfg.csv_path {
        std::fs::write(path, report::timeline::render_csv(&report.timeline, cfg.llm.is_some()))
            .map_err(|e| EngineError::Start(format!("cannot write the CSV timeline to {}: {e}", path.display())))?;
    }
    if let Some(path) = &cfg.hdr_log_path {
        std::fs::write(path, report::hdr_log::render(outcome.started_at_us, &outcome.interval_histograms))
            .map_err(|e| EngineError::Start(format!("cannot write the HdrHistogram log to {}: {e}", path.display())))?;
    }
    let end = RunEnd { slos_pass: report.slos_pass(), interrupted: signal::interrupted() };
    if let Some(server) = metrics {
        linger(server, cfg.metrics_linger);
    }
    printed.map_err(EngineError::Start)?;
    Ok(end)
}

/// How a run ended, for its exit code.
#[derive(Debug, Clone, Copy)]
struct RunEnd {
    /// Every `--slo` passed.
    slos_pass: bool,
    /// Ctrl-C stopped the run (not merely `--metrics-linger` after it).
    interrupted: bool,
}

/// How often the linger looks at Ctrl-C.
const LINGER_POLL: Duration = Duration::from_millis(50);

/// `--metrics-linger`: keeps `/metrics` up a while after the report, so a scrape after the run's end still finds its
/// final figures (Prometheus scrapes on its own clock); Ctrl-C ends the wait early. Then the endpoint stops.
fn linger(server: MetricsServer, linger: Duration) {
    if !linger.is_zero() && !signal::interrupted() {
        eprintln!("ssebench: metrics stay at http://{}/metrics for {linger:?} (Ctrl-C ends this)", server.addr);
        let end = std::time::Instant::now() + linger;
        while !signal::interrupted() {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(LINGER_POLL));
        }
    }
    server.stop();
}

/// The live view's writer: on a terminal, each interval's line redraws the last in place (`\r`, then ANSI "erase
/// line", so a shorter line leaves nothing behind); in a log, a plain line as `live::Cadence` says. A bare escape
/// rather than a progress-bar crate: one line, drawn once per interval by the engine's thread, needs no ticker thread,
/// width handling or dependency. Write errors are ignored: the view must never stop a run.
struct LiveView {
    terminal: bool,
    cadence: live::Cadence,
    drawn: bool,
}

impl LiveView {
    fn new(terminal: bool) -> LiveView {
        LiveView { terminal, cadence: live::Cadence::default(), drawn: false }
    }

    fn show(&mut self, end_us: u64, line: &str) {
        let mut stderr = io::stderr().lock();
        let _ = match self.terminal {
            true => write!(stderr, "\r\x1b[2K{line}"),
            false if self.cadence.due(end_us) => writeln!(stderr, "{line}"),
            false => return,
        };
        let _ = stderr.flush();
        self.drawn = true;
    }

    /// Ends a terminal's redrawn line, so what follows starts on a line of its own; the last state stays in view.
    fn finish(self) {
        if self.terminal && self.drawn {
            let _ = writeln!(io::stderr());
        }
    }
}

/// Writes `text` to stdout. A closed stdout (`ssebench run ... | head -1`) is not a failure: the reader took what it
/// wanted, so the rest is dropped and the command's own exit code stands, as in ripgrep (`print!` would panic, exit
/// 101). Any other write error is one.
pub fn print_stdout(text: &str) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(|err| format!("cannot write the report to stdout: {err}")),
    }
}

fn serve(cfg: &ServeConfig) -> Result<(), String> {
    let handle = server::start(cfg, 0)?;
    let what = match &cfg.openai {
        Some(model) => format!(
            "answering /v1/chat/completions and /v1/completions: {} tokens/s, {} per chunk, {} tokens unless max_tokens cuts them",
            model.tokens_per_s, model.tokens_per_chunk, model.output_tokens
        ),
        None => format!(
            "{} events per stream every {:?}",
            if cfg.events == 0 { "endless".to_string() } else { cfg.events.to_string() },
            cfg.interval
        ),
    };
    eprintln!(
        "ssebench serve: listening on {} ({} threads, {}); {what}",
        handle
            .addrs
            .iter()
            .map(|a| format!("{}://{a}", if cfg.tls.is_some() { "https" } else { "http" }))
            .collect::<Vec<_>>()
            .join(", "),
        cfg.threads,
        handle.driver.name(),
    );
    handle.wait()
}

/// Built-in server on a loopback ephemeral port plus a short run against it, in one process.
fn demo(demo: &DemoConfig) -> Result<bool, String> {
    if demo.openai {
        return demo_openai(demo);
    }
    let (server_threads, client_threads) = demo_threads();
    let serve_cfg = ServeConfig {
        events: 100,
        interval: Duration::from_millis(20),
        size_bytes: 100,
        first_delay: Duration::from_millis(50),
        jitter: Duration::from_millis(2),
        ..demo_server(server_threads)
    };
    let handle = server::start(&serve_cfg, client_threads)?;
    let url = format!("http://{}/", handle.addr);
    eprintln!(
        "demo: the same as `ssebench serve --addr {} --events 100 --interval 20ms --size 100 --first-delay 50ms \
         --jitter 2ms` and `ssebench run {url} -c {} -d {:?} --send-time stamp`",
        handle.addr, demo.connections, demo.duration
    );
    // The built-in server stamps its events: the demo shows their delivery lag and the verdict too.
    let send_time = crate::send_time::SendTime::parse("stamp", "auto")?;
    let run = RunConfig { send_time: Some(std::sync::Arc::new(send_time)), ..demo_run(demo, client_threads, &url)? };
    run_against(&run, handle)
}

/// The demo's server: loopback, an ephemeral port, `threads` cores, plain HTTP; the caller sets what it sends.
fn demo_server(threads: usize) -> ServeConfig {
    ServeConfig { threads, ..ServeConfig::new("127.0.0.1:0".parse().expect("literal address")) }
}

/// The demo's run against `url`: its connections, duration and JSON path on `threads` cores.
fn demo_run(demo: &DemoConfig, threads: usize, url: &str) -> Result<RunConfig, String> {
    Ok(RunConfig {
        connections: demo.connections,
        duration: Some(demo.duration),
        threads,
        json_path: demo.json_path.clone(),
        live: demo.live,
        ..RunConfig::new(vec![Target::parse(url).map_err(|e| e.0)?])
    })
}

/// The demo's cores: half serve, the rest (at least one) run the load.
fn demo_threads() -> (usize, usize) {
    let cores = limits::available_cores();
    let server_threads = (cores / 2).max(1);
    (server_threads, cores.saturating_sub(server_threads).max(1))
}

/// Runs `cfg` against the demo's in-process server, then stops it.
fn run_against(cfg: &RunConfig, server: server::ServerHandle) -> Result<bool, String> {
    let result = run(cfg, 0, true);
    server.stop();
    result.map(|end| end.slos_pass).map_err(|e| e.to_string())
}

/// `demo --openai`: a simulated model (50 tokens/s per stream, prefill growing with the prompt) and chat
/// completions with synthetic prompts against it.
fn demo_openai(demo: &DemoConfig) -> Result<bool, String> {
    let (server_threads, client_threads) = demo_threads();
    let model = ModelShape { tokens_per_s: 50.0, tokens_per_chunk: 1, prefill_us_per_token: 100, output_tokens: 64 };
    let serve_cfg =
        ServeConfig { first_delay: Duration::from_millis(20), openai: Some(model), ..demo_server(server_threads) };
    let handle = server::start(&serve_cfg, client_threads)?;
    let url = format!("http://{}/v1/chat/completions", handle.addr);
    eprintln!(
        "demo: the same as `ssebench serve --addr {} --openai --tokens-per-s 50 --prefill-us-per-token 100 \
         --first-delay 20ms` and `ssebench run {url} --openai chat --prompt-tokens 64..512 --max-tokens 32 -c {} -d {:?}`",
        handle.addr, demo.connections, demo.duration
    );
    let llm = LlmConfig {
        api: Api::Chat,
        model: serve_cfg.model_name.clone(),
        max_tokens: Some(32),
        extra_body: None,
        prompts: std::sync::Arc::new(PromptSource::synthetic(64, 512)),
        scenario: None,
        step_targets: Vec::new(),
    };
    let run_cfg = RunConfig {
        method: "POST".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        llm: Some(llm),
        ..demo_run(demo, client_threads, &url)?
    };
    run_against(&run_cfg, handle)
}
