//! Runs a load test: plan the shards, start one runtime per core (pinned unless the target is on loopback), join
//! them, merge their recorders.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{ConfigError, RunConfig};
use crate::limits;
use crate::live;
use crate::metrics;
use crate::outcome::{Memory, RunOutcome, StageOutcome};
use crate::plan::Plan;
use crate::recorder::Recorder;
use crate::requests;
use crate::runtime;
use crate::streams_log::{BUFFERS_PER_CORE, StreamRecord};
use crate::sys;
use crate::timeline::{Collector, Entry, Interval, SNAPSHOTS_PER_CORE};
use crate::worker::{self, IntervalLink, RunShared, StreamsLogLink, Timing};

/// Why a run could not start or finish. Start-up and shutdown only, so strings are fine.
#[derive(Debug)]
pub enum EngineError {
    /// The config cannot run (a rule, a bad template): the user's to fix, like a usage error.
    Config(ConfigError),
    /// The host could not start or finish it (descriptors, threads, a runtime).
    Start(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Config(err) => err.fmt(f),
            EngineError::Start(message) => f.write_str(message),
        }
    }
}

impl From<ConfigError> for EngineError {
    fn from(err: ConfigError) -> EngineError {
        EngineError::Config(err)
    }
}

impl std::error::Error for EngineError {}

/// How often the engine samples the process's resident memory while streams are open.
const RSS_SAMPLE_PERIOD: Duration = Duration::from_millis(50);

/// How often the engine looks for interval snapshots once a worker has finished (before, it waits on them).
const DRAIN_PERIOD: Duration = Duration::from_millis(10);

/// The engine's end of the interval snapshots: the collector, the cores' snapshots coming in, and each core's
/// channel for the emptied ones going back.
struct Intervals<'a> {
    collector: Collector,
    from_cores: Receiver<Interval>,
    back: Vec<SyncSender<Interval>>,
    live: Option<Live<'a>>,
    metrics: Option<Metrics<'a>>,
}

/// Where `run_live` hands each live-view line: the interval's end (µs since the start) and the line.
pub type LiveSink<'a> = &'a mut dyn FnMut(u64, &str);

/// The live view's end of the collector: each timeline entry, once complete, becomes one line for the sink.
struct Live<'a> {
    shape: live::Shape,
    sink: LiveSink<'a>,
    /// Timeline entries already shown, and where the last of them ended (µs since the start).
    shown: usize,
    shown_end_us: u64,
}

impl Live<'_> {
    /// Shows the entries of `timeline` not shown yet: about one per interval, never per event.
    fn show(&mut self, timeline: &[Entry]) {
        for entry in timeline.get(self.shown..).unwrap_or_default() {
            self.shown += 1;
            // Entries run forward in time (the collector leaves out an index no core sent); a last, partial one that
            // ended with the previous adds no line of its own.
            if entry.end_us <= self.shown_end_us {
                continue;
            }
            (self.sink)(entry.end_us, &self.shape.line(entry, self.shown_end_us));
            self.shown_end_us = entry.end_us;
        }
    }
}

/// Where `run_live` hands `--metrics-addr`'s exposition text: once at the start, once per interval the collector
/// completes, and once with the final figures.
pub type MetricsSink<'a> = &'a mut dyn FnMut(String);

/// The metrics' end of the collector: its running totals rendered (`metrics::render`) whenever the timeline grows.
struct Metrics<'a> {
    shape: metrics::Shape,
    sink: MetricsSink<'a>,
    /// The timeline's length when last published.
    published: usize,
}

impl Metrics<'_> {
    /// Publishes the collector's figures: with `only_if_new`, only when it emitted an interval since the last time.
    fn publish(&mut self, collector: &Collector, only_if_new: bool) {
        if only_if_new && collector.timeline.len() == self.published {
            return;
        }
        self.published = collector.timeline.len();
        let totals = collector.totals().expect("a collector keeping totals for the metrics");
        (self.sink)(metrics::render(&self.shape, totals, collector.timeline.last()));
    }
}

impl Intervals<'_> {
    /// Merges one snapshot and hands it back emptied (dropped if its core is gone); shows and publishes what it
    /// completed.
    fn take(&mut self, snapshot: Interval) {
        let core = snapshot.core;
        let emptied = self.collector.accept(snapshot);
        let _ = self.back[core].try_send(emptied);
        if let Some(live) = &mut self.live {
            live.show(&self.collector.timeline);
        }
        if let Some(metrics) = &mut self.metrics {
            metrics.publish(&self.collector, true);
        }
    }

    /// Waits up to `timeout` for snapshots and takes every one that came; false once every core has gone (nothing
    /// more will come).
    fn drain(&mut self, timeout: Duration) -> bool {
        match self.from_cores.recv_timeout(timeout) {
            Ok(snapshot) => self.take(snapshot),
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
        while let Ok(snapshot) = self.from_cores.try_recv() {
            self.take(snapshot);
        }
        true
    }
}

/// `--streams-log`'s writer: formats each core's records as JSON lines into `file` and hands the emptied buffer
/// back, until every core has sent its last; returns the lines written. Runs on its own thread, so formatting and
/// the file's IO never touch a core; a core whose buffer it has not handed back in time drops (and counts) records.
fn write_streams_log(
    file: std::fs::File,
    from_cores: Receiver<(usize, Vec<StreamRecord>)>,
    back: Vec<SyncSender<Vec<StreamRecord>>>,
    run_start_us: u64,
    llm: bool,
) -> std::io::Result<u64> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let mut lines = 0u64;
    for (core, mut records) in from_cores {
        for record in &records {
            record.write_line(&mut out, run_start_us, llm)?;
        }
        lines += records.len() as u64;
        records.clear();
        let _ = back[core].try_send(records);
    }
    out.flush()?;
    Ok(lines)
}

/// How often the engine looks for a worker that ended without sending its last snapshot while others run on (it
/// panicked). Every other end is seen at once: a core's last snapshot wakes the engine, and so does the last core
/// gone (its runtime failed to start). Once a second: an idle run should not wake the engine for nothing.
const FINISH_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// The end of the streaming phase, and the most memory resident while every worker still ran its streams: it returns
/// when the first core sends its last snapshot (or a worker thread ends without one), so what a worker allocates to
/// hand back its recorder, and the merge, are not counted as the streams' cost. Between snapshots it sleeps: with
/// `sample` (the kernel's high-water mark could not be reset) it reads VmRSS every `RSS_SAMPLE_PERIOD`, which misses
/// spikes shorter than that; otherwise it reads nothing, and the caller takes the kernel's VmHWM.
fn watch_rss<T>(workers: &[std::thread::JoinHandle<T>], intervals: &mut Intervals, sample: bool) -> Option<u64> {
    let mut peak = if sample { sys::memory_kib().map(|m| m.rss_kib) } else { None };
    let mut next_sample = Instant::now() + RSS_SAMPLE_PERIOD;
    while !intervals.collector.a_core_finished() && !workers.iter().any(|w| w.is_finished()) {
        let now = Instant::now();
        if !sample || now < next_sample {
            let timeout = if sample { (next_sample - now).min(FINISH_CHECK_PERIOD) } else { FINISH_CHECK_PERIOD };
            if !intervals.drain(timeout) {
                break;
            }
            continue;
        }
        next_sample += RSS_SAMPLE_PERIOD;
        if let Some(now) = sys::memory_kib() {
            peak = Some(peak.map_or(now.rss_kib, |p| p.max(now.rss_kib)));
        }
    }
    peak
}

/// `--start-at`: sleeps until `at_unix_us` on the wall clock, a little at a time so a Ctrl-C is seen; returns how
/// late the barrier was reached (0 when waited for).
fn wait_for_start(at_unix_us: u64) -> u64 {
    let late_us = crate::units::unix_micros().saturating_sub(at_unix_us);
    loop {
        let now_us = crate::units::unix_micros();
        if now_us >= at_unix_us || crate::signal::interrupted() {
            return late_us;
        }
        std::thread::sleep(Duration::from_micros((at_unix_us - now_us).min(100_000)));
    }
}

/// Runs the load test described by `cfg` and blocks until it is over. `first_core` shifts the
/// pinning, so an in-process server (the demo) can keep other cores.
pub fn run(cfg: &RunConfig, first_core: usize) -> Result<RunOutcome, EngineError> {
    run_live(cfg, first_core, None, None)
}

/// `run`, handing `live` each interval's live-view line as the collector completes it: the interval's end (µs since
/// the start) and the line (`live::Shape::line`), and `metrics` the Prometheus exposition of the run so far
/// (`metrics::render`: at the start, as each interval completes, and at the end). Both are called on the engine's
/// thread, about once per `--report-interval`, never by a worker.
pub fn run_live(
    cfg: &RunConfig,
    first_core: usize,
    live: Option<LiveSink<'_>>,
    metrics: Option<MetricsSink<'_>>,
) -> Result<RunOutcome, EngineError> {
    cfg.validate()?;
    // Built once here, before anything connects: a bad template stops the run now, never midway.
    let requests = requests::build(cfg, &|name| std::env::var(name).ok())?;
    let driver = runtime::resolve_for_streams(cfg.driver).map_err(EngineError::Start)?;
    let pin = runtime::pin_for_streams(cfg.pin, cfg.targets.iter().map(|t| t.addr));
    let plan = Plan::new(cfg);
    // Refuse before anything connects: a run that hits EMFILE halfway measures the host, not the target.
    // This process's users (with --shard, its share of the run's), one descriptor each at most.
    let users: usize = plan.shards.iter().map(|s| s.virtual_users).sum();
    limits::ensure_descriptors(users as u64, plan.shards.len() as u64).map_err(EngineError::Start)?;
    let step_targets = cfg.llm.as_ref().map_or(&[][..], |l| &l.step_targets[..]);
    // The CLI builds the TLS config whenever a target is https://; a config made in code must too.
    if cfg.tls.is_none() && cfg.targets.iter().chain(step_targets.iter().flatten()).any(|t| t.tls_name.is_some()) {
        return Err(ConfigError("an https:// target needs a TLS config (RunConfig::tls)".into()).into());
    }
    let extract_slots = cfg.llm.as_ref().map_or(Vec::new(), |l| l.extract_slots());
    let Plan { shards, windows, length, open_model } = plan;
    let shared = Arc::new(RunShared {
        cfg: cfg.clone(),
        requests: requests.targets,
        steps: requests.steps,
        extract_slots,
        windows,
        length,
        open_model,
    });
    let threads = shards.len();
    // Opened before anything connects: a path that cannot be written stops the run now.
    let streams_log = match &cfg.streams_log_path {
        Some(path) => Some(std::fs::File::create(path).map_err(|e| {
            EngineError::Start(format!("cannot create the --streams-log file {}: {e}", path.display()))
        })?),
        None => None,
    };
    // Room for every buffer the cores can have out at once, so no core ever waits on the writer.
    let (log_tx, log_rx) = mpsc::sync_channel(threads * BUFFERS_PER_CORE);
    let mut log_back = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    let mut go_senders = Vec::with_capacity(threads);
    let (ready_tx, ready_rx) = mpsc::channel();
    // Room for every snapshot a core can have out at once, so no core ever waits on the collector.
    let (snapshot_tx, snapshot_rx) = mpsc::sync_channel(threads * SNAPSHOTS_PER_CORE);
    let expected_intervals =
        shared.length.map_or(0, |length| (length.as_nanos() / cfg.report_interval.as_nanos()) as usize);
    let mut collector = Collector::new(threads, cfg.llm.is_some(), expected_intervals);
    if cfg.hdr_log_path.is_some() {
        collector = collector.keeping_histograms();
    }
    if metrics.is_some() {
        collector = collector.keeping_totals();
    }
    let stage_targets: Vec<usize> = shared.windows.iter().map(|w| w.streams).collect();
    let mut intervals = Intervals {
        collector,
        from_cores: snapshot_rx,
        back: Vec::with_capacity(threads),
        live: live.map(|sink| Live {
            shape: live::Shape { length: shared.length, stage_targets: stage_targets.clone(), llm: cfg.llm.is_some() },
            sink,
            shown: 0,
            shown_end_us: 0,
        }),
        metrics: metrics.map(|sink| Metrics {
            shape: metrics::Shape {
                run_id: cfg.run_id.clone(),
                llm: cfg.llm.is_some(),
                delivery: cfg.send_time.is_some(),
                stage_targets,
                target_streams: cfg.arrivals.map_or(cfg.connections, |a| a.max_streams),
            },
            sink,
            published: 0,
        }),
    };
    // Zeros and the first target before the first interval ends, so a scrape finds every series from the start.
    if let Some(metrics) = &mut intervals.metrics {
        metrics.publish(&intervals.collector, false);
    }
    for shard in shards {
        let shared = shared.clone();
        let name = format!("ssebench-worker-{}", shard.core_index);
        let slot = first_core + shard.core_index;
        let ready = ready_tx.clone();
        let (go_tx, go_rx) = mpsc::sync_channel(1);
        go_senders.push(go_tx);
        let (back_tx, back_rx) = mpsc::sync_channel(SNAPSHOTS_PER_CORE);
        intervals.back.push(back_tx);
        let (log_back_tx, log_back_rx) = mpsc::sync_channel(BUFFERS_PER_CORE);
        log_back.push(log_back_tx);
        let streams_log =
            streams_log.is_some().then(|| StreamsLogLink { to_writer: log_tx.clone(), back: log_back_rx });
        let link = IntervalLink { to_collector: snapshot_tx.clone(), back: back_rx, streams_log };
        // On failure the senders drop, so the workers already started return at once.
        let handle = runtime::spawn_core(name, pin.then_some(slot), driver, move || {
            worker::run(shard, shared, ready, go_rx, link)
        })
        .map_err(|e| EngineError::Start(format!("cannot start a worker thread: {e}")))?;
        handles.push(handle);
    }
    drop(ready_tx);
    drop(snapshot_tx);
    drop(log_tx);
    // Every worker has allocated its state: what the process holds now is the cost of no streams.
    // A worker whose runtime failed to build never reports; its thread ends instead.
    let mut ready = 0;
    while ready < threads && !handles.iter().any(|h| h.is_finished()) {
        if ready_rx.recv_timeout(Duration::from_millis(20)).is_ok() {
            ready += 1;
        }
    }
    // `--start-at`: every worker is ready; wait for the barrier (Ctrl-C still stops the run), or note how late it is.
    let start_late_us = cfg.start_at_unix_us.filter(|_| ready == threads).map(wait_for_start);
    let rss_before_kib = sys::memory_kib().map(|m| m.rss_kib);
    // From here the kernel keeps the peak (VmHWM), short spikes included; sampling is the fallback.
    let kernel_peak = sys::reset_peak();
    let start = Instant::now();
    let started_at = SystemTime::now();
    let started_at_us = started_at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let llm = cfg.llm.is_some();
    let log_writer = match streams_log {
        Some(file) => Some(
            std::thread::Builder::new()
                .name("ssebench-streams-log".into())
                .spawn(move || write_streams_log(file, log_rx, log_back, started_at_us, llm))
                .map_err(|e| EngineError::Start(format!("cannot start the --streams-log writer: {e}")))?,
        ),
        None => None,
    };
    let timing = Timing { start, deadline: shared.length.map(|d| start + d) };
    if ready == threads {
        for go in &go_senders {
            let _ = go.send(timing);
        }
    }
    drop(go_senders);
    let sampled_peak_kib = watch_rss(&handles, &mut intervals, !kernel_peak);
    let rss_peak_kib = if kernel_peak { sys::memory_kib().map(|m| m.hwm_kib) } else { sampled_peak_kib };
    // Keep collecting until every worker is done: a core that still runs must find its emptied snapshots back.
    while !handles.iter().all(|h| h.is_finished()) {
        if !intervals.drain(DRAIN_PERIOD) {
            // Every core's sender is gone, its thread about to end.
            std::thread::sleep(DRAIN_PERIOD);
        }
    }
    let mut merged = Recorder::new();
    let mut stages: Vec<StageOutcome> =
        shared.windows.iter().map(|&window| StageOutcome { window, recorder: Recorder::new() }).collect();
    let mut stages_begun = 0;
    for handle in handles {
        let recorders = handle
            .join()
            .map_err(|_| EngineError::Start("a worker thread panicked".into()))?
            .map_err(|e| EngineError::Start(format!("cannot start a {} runtime: {e}", driver.name())))?;
        // A run stopped early (Ctrl-C) hands back only the stages it began.
        stages_begun = stages_begun.max(recorders.len());
        for (stage, recorder) in stages.iter_mut().zip(&recorders) {
            stage.recorder.merge(recorder);
        }
        for recorder in &recorders {
            merged.merge(recorder);
        }
    }
    stages.truncate(stages_begun);
    while let Ok(snapshot) = intervals.from_cores.try_recv() {
        intervals.take(snapshot);
    }
    intervals.collector.close();
    if let Some(metrics) = &mut intervals.metrics {
        metrics.publish(&intervals.collector, false);
    }
    let cores_busy = intervals.collector.cores_busy();
    let (timeline, interval_histograms) = intervals.collector.finish_with_histograms();
    if let Some(live) = &mut intervals.live {
        live.show(&timeline);
    }
    // Every core has sent its last records (its sender is gone): the writer ends once it has written them.
    if let Some(writer) = log_writer {
        writer
            .join()
            .map_err(|_| EngineError::Start("the --streams-log writer panicked".into()))?
            .map_err(|e| EngineError::Start(format!("cannot write the --streams-log file: {e}")))?;
    }
    let elapsed = start.elapsed();
    let memory = match (rss_before_kib, rss_peak_kib) {
        (Some(before), Some(peak)) => Some(Memory { rss_before_kib: before, rss_peak_kib: peak, kernel_peak }),
        _ => None,
    };
    Ok(RunOutcome {
        recorder: merged,
        stages,
        driver: driver.name(),
        threads,
        elapsed,
        memory,
        stopped_by_signal: crate::signal::interrupted(),
        open_model: shared.open_model,
        step_names: cfg.llm.as_ref().map_or(Vec::new(), |l| l.step_names()),
        timeline,
        interval_histograms,
        cores_busy,
        shard: cfg.shard,
        start_at: cfg.start_at_unix_us.zip(start_late_us),
        started_at_us,
        host: sys::hostname(),
    })
}
